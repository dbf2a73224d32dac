"""``finharness tasks``: every task with its role, label set and size."""
from __future__ import annotations

import argparse
import sys


def dropped_note(row: dict) -> str:
    return "; ".join(f"{n} {split} rows dropped (no gold label)" for split, n in row.get("dropped", {}).items())


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from fin_tasks.common.validate import validate_with_suite
    from fin_tasks.index import include_paths, roles, task_manager

    extra = include_paths(args.include_path)
    rows, errors = validate_with_suite(extra, suite_data=True)
    # An invalid user folder is left out of the roles, not the suite's roles with it.
    role = roles(task_manager(extra if not errors else [], hub=True).task_index)
    table = [
        [r["name"], r["kind"], role.get(r["name"], ""), len(r.get("labels", [])) or "",
         (r.get("splits") or {}).get("test", ""), r.get("skipped", "") or dropped_note(r)]
        for r in rows
    ]
    print(tabulate(table, headers=["name", "kind", "role", "labels", "test docs", "note"], tablefmt="github"))
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    return 1 if errors else 0


def register(sub) -> None:
    ts = sub.add_parser("tasks", help="list the tasks with their roles, label sets and sizes")
    ts.add_argument("--include_path", action="append", default=None, metavar="DIR", help="your own task folders too")
    ts.add_argument(
        "--online", action="store_true", help="allow network access to the Hugging Face Hub (default: offline)"
    )
    ts.set_defaults(func=run)
