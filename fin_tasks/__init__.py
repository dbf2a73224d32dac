"""finharness task suites: lm-eval YAML tasks for financial classification and generalization.

- ``tasks/``: every task whose data ships in this package (runs offline), plus the
  ``finharness_*`` groups. ``python -m fin_tasks`` prints this folder, for
  ``lm_eval --include_path``.
- ``hub_tasks/``: tasks with no redistributable data (M&A), read from the Hugging Face
  Hub. ``python -m fin_tasks --hub`` prints the package root, which holds both.
- ``index.py``: the one task index (include paths, lm-eval's TaskManager, names, roles).
"""
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
TASKS_DIR = PACKAGE_DIR / "tasks"
HUB_TASKS_DIR = PACKAGE_DIR / "hub_tasks"

__all__ = ["PACKAGE_DIR", "TASKS_DIR", "HUB_TASKS_DIR"]
