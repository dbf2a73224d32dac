"""``finharness forgetting ENTRY REFERENCE``: per-task change, seen / unseen / retention averages."""
from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from evidence.forgetting import ROLE_FORMATS, TASK_FORMATS, forgetting_report
    from evidence.measures import recorded_include_paths, task_roles
    from fin_tasks.index import include_paths

    # The roles of a user's tasks come from their YAMLs: the folders each evaluation recorded.
    folders = include_paths([*recorded_include_paths(args.entry), *recorded_include_paths(args.reference),
                             *(args.include_path or [])])
    rows, averages = forgetting_report(args.entry, args.reference, args.metric, task_roles(folders))
    print(f"{args.metric} (a task without it: its own headline metric): {args.entry} against {args.reference}, "
          "each task on the same documents")
    print("change = score - reference, with its 95% paired bootstrap interval and paired permutation p: above 0 "
          "the entry scores higher; on unseen and retention tasks a negative change is forgetting, on seen tasks a "
          "positive one is what fine-tuning bought. baseline = the best trivial answer's score on the same documents "
          "(majority, training prior, random); normalized = (score - baseline) / (1 - baseline), 0 = a trivial "
          "answer, unclipped. collapsed = answers far from the gold labels with MCC about 0: the score then says "
          "how common that label is, not what was learned.\n")
    print(tabulate([r.as_row() for r in rows], headers="keys", tablefmt="github", floatfmt=TASK_FORMATS,
                   missingval=""))
    if averages:
        print("\nPer role: the mean change over its tasks (tasks weigh alike), and its interval from the tasks' "
              "paired replicates; normalized_change over its classification tasks.\n")
        print(tabulate([a.as_row() for a in averages], headers="keys", tablefmt="github", floatfmt=ROLE_FORMATS,
                       missingval=""))
    if any(r.low is None for r in rows):
        print("\nNo interval where a folder has no per-sample logs (score with finharness eval, which keeps them); "
              "those tasks were matched by their recorded slice and document count only.")
    collapsed = [r.task for r in rows if r.collapsed]
    if collapsed:
        print(f"\nRead with care: {', '.join(collapsed)} collapsed in at least one folder (the collapsed column).")
    return 0


def register(sub) -> None:
    fo = sub.add_parser(
        "forgetting", help="per-task change of one result folder against another (seen/unseen averages)"
    )
    fo.add_argument("entry", type=Path, help="--output_path folder of the fine-tuned or merged model")
    fo.add_argument(
        "reference", type=Path, help="--output_path folder of the reference (e.g. the base model zero-shot)"
    )
    fo.add_argument("--metric", default="acc",
                    help="a metric the tasks report (acc, f1_macro, mcc, rougeL, ...); a task without it is read on "
                         "its own headline metric")
    fo.add_argument("--include_path", action="append", default=None, metavar="DIR",
                    help="task folders whose role tags count (default: those the evaluations recorded)")
    fo.set_defaults(func=run)
