"""`python -m harness.lm_eval_cli ARGS`: lm-eval's own CLI, with `--model hf-shared-prefix` available.

lm-eval 0.4.13 has no plugin hook for model backends (PR #4013 adds the `lm_eval.models`
entry point, which pyproject.toml declares for when it ships), so this wrapper only
imports finharness's backends (harness/backends.py), which registers them, and hands every
argument to lm-eval.
"""
from lm_eval.__main__ import cli_evaluate

from harness.backends import BACKENDS, register

if __name__ == "__main__":
    from fin_tasks.sandbox import sandbox_templates

    for name in BACKENDS:
        register(name)
    sandbox_templates()  # task templates render in Jinja's sandbox, as under finharness eval
    cli_evaluate()
