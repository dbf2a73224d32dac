"""Print the folder for `lm_eval --include_path "$(python -m fin_tasks)"`.

With --hub, print the package root instead: it also holds the tasks that read the
Hugging Face Hub (M&A), which an offline run cannot load.
"""
import sys

from fin_tasks import PACKAGE_DIR, TASKS_DIR

print(PACKAGE_DIR if "--hub" in sys.argv[1:] else TASKS_DIR)
