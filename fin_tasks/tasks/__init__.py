"""Packaged task YAMLs: the folder `lm_eval --include_path` and the lm_eval.tasks entry point scan."""
