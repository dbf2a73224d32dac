"""finharness harness: resolve checkpoints, run lm-eval on the task suite, report scores."""
