"""``finharness compare A B``: paired bootstrap interval and permutation test."""
from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from evidence.stats import compare

    rows = [compare(args.a, args.b, task, args.metric, args.resamples, args.level, args.seed)
            for entry in args.tasks for task in entry.split(",") if task]
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".4f"))
    return 0


def register(sub) -> None:
    co = sub.add_parser("compare", help="paired bootstrap interval and permutation test between two result folders")
    co.add_argument("a", type=Path, help="--output_path folder of the first entry")
    co.add_argument("b", type=Path, help="--output_path folder of the second entry")
    co.add_argument("--tasks", "-t", action="append", required=True, help="task(s), comma-separated")
    co.add_argument("--metric", default="acc", help="a per-sample metric of the task (acc, f1_macro, rougeL, ...)")
    co.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of the documents")
    co.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals")
    co.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draws")
    co.set_defaults(func=run)
