"""Print the folder for `lm_eval --include_path "$(python -m fin_tasks)"`.

With --hub, print the package root instead: it also holds the tasks that read the
Hugging Face Hub (M&A), which an offline run cannot load. With task folders of your own
(`python -m fin_tasks my_tasks`), print one folder that holds the suite and them: plain
lm_eval keeps only one --include_path (fin_tasks/one_folder.py).
"""
import sys

from fin_tasks import PACKAGE_DIR, TASKS_DIR

hub = "--hub" in sys.argv[1:]
folders = [a for a in sys.argv[1:] if a != "--hub"]
if folders:
    from fin_tasks.one_folder import one_folder

    try:
        print(one_folder(folders, hub=hub))
    except ValueError as err:
        sys.exit(f"python -m fin_tasks: {err}")
else:
    print(PACKAGE_DIR if hub else TASKS_DIR)
