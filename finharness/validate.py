"""``finharness validate``: check task YAMLs and their data before lm-eval runs them."""
from __future__ import annotations

import argparse
from pathlib import Path

from finharness.arguments import old_spelling


def run(args: argparse.Namespace) -> int:
    from fin_tasks import HUB_TASKS_DIR, TASKS_DIR
    from fin_tasks.common.validate import validate_paths
    from fin_tasks.index import include_paths
    from fin_tasks.sandbox import code_in_task_folders

    paths = [*args.paths, *include_paths(args.include_path)] or [TASKS_DIR, HUB_TASKS_DIR]
    rows, errors = validate_paths(paths, with_data=not args.no_data)
    for row in rows:
        note = f"  (data not checked: {row['skipped']})" if "skipped" in row else ""
        print(f"ok     {row['name']}{note}")
    for err in errors:
        print(f"error  {err}")
    # Read, never run: your own eval may run a folder's code; the board refuses it.
    runs_code = code_in_task_folders(paths)
    for use in runs_code:
        print(f"code   {use}")
    print(f"{len(rows)} valid, {len(errors)} invalid"
          + (f"; {len(runs_code)} place(s) would run code (none was run here; a leaderboard refuses such a folder, "
             "finharness eval runs your own !function code and renders templates in a sandbox)" if runs_code else ""))
    return 1 if errors else 0


def register(sub) -> None:
    va = sub.add_parser("validate", help="check task YAMLs and their data before lm-eval runs them")
    va.add_argument("paths", nargs="*", type=Path, help="YAML files or folders (default: the packaged suite)")
    va.add_argument("--include_path", action="append", default=None, metavar="DIR",
                    help="a task folder to check, as lm_eval --include_path (same as a path argument)")
    va.add_argument("--no_data", action="store_true", help="check the YAML only, do not load data")
    old_spelling(va, "--no-data", "--no_data", "no_data", flag=True)
    va.add_argument(
        "--online",
        action="store_true",
        help="load tasks whose data is only on the Hugging Face Hub (default: offline, their data is skipped)",
    )
    va.set_defaults(func=run)
