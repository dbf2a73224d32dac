"""``finharness forgetting ENTRY REFERENCE``: per-task change, seen / unseen / retention averages."""
from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from fin_tasks.index import include_paths
    from harness.measures import ROLES, change_table, members_by_role, read_scores, recorded_include_paths, task_roles

    # The roles of a user's tasks come from their YAMLs: the folders each evaluation recorded.
    folders = include_paths([*recorded_include_paths(args.entry), *recorded_include_paths(args.reference),
                             *(args.include_path or [])])
    members = members_by_role(task_roles(folders))
    rows, averages = change_table(read_scores(args.entry, args.metric, fallback_to_own=True),
                                  read_scores(args.reference, args.metric, fallback_to_own=True),
                                  *(members[r] for r in ROLES))
    print(f"{args.metric} (a task without it: its own first metric): {args.entry} against {args.reference}")
    print("change = score - reference: above 0 the entry scores higher; on unseen and retention tasks a "
          "negative change is forgetting, on seen tasks a positive one is what fine-tuning bought.\n")
    # Scores as plain numbers, only the change signed.
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=("", "", ".4f", ".4f", "+.4f")))
    if averages:
        print()
        print(tabulate(averages, headers="keys", tablefmt="github", floatfmt=("", "", ".4f", ".4f", "+.4f")))
    return 0


def register(sub) -> None:
    fo = sub.add_parser(
        "forgetting", help="per-task change of one result folder against another (seen/unseen averages)"
    )
    fo.add_argument("entry", type=Path, help="--output_path folder of the fine-tuned or merged model")
    fo.add_argument(
        "reference", type=Path, help="--output_path folder of the reference (e.g. the base model zero-shot)"
    )
    fo.add_argument("--metric", default="acc", help="per task; a task without it is read on its own first metric")
    fo.add_argument("--include_path", action="append", default=None, metavar="DIR",
                    help="task folders whose role tags count (default: those the evaluations recorded)")
    fo.set_defaults(func=run)
