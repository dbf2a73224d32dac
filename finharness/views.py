"""``finharness views``: in-domain / out-of-domain / cross-task placement of the gen_* tasks."""
from __future__ import annotations

import argparse
from pathlib import Path

from finharness.arguments import old_spelling


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from evidence.result_files import load_results
    from evidence.views import load_views, place_tasks, view_of, view_table
    from fin_tasks.index import task_manager

    if not args.trained_on:
        raise ValueError("views: give --trained_on, the task(s) the model was fine-tuned on")
    trained = [t for entry in args.trained_on for t in entry.split(",") if t]
    views = load_views()
    places = place_tasks(views, task_manager().task_index)
    unknown = [t for t in trained if t not in places]
    if unknown:
        raise ValueError(f"--trained_on: {', '.join(unknown)} is not a generalization-suite task")
    if args.results is None:
        rows = [[t, places[t].task_type, view_of(t, trained, places)] for t in sorted(places)]
        print(tabulate(rows, headers=["task", "type", "view"], tablefmt="github"))
        return 0
    rows = view_table(load_results(args.results)["results"], trained, places, views)
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".4f"))
    return 0


def register(sub) -> None:
    vi = sub.add_parser("views", help="in-domain / out-of-domain / cross-task placement of the gen_* tasks")
    old_spelling(vi, "--trained-on", "--trained_on", "trained_on", append=True)
    vi.add_argument("--trained_on", action="append", default=None,
                    help="the task(s) the model was fine-tuned on, e.g. gen_sentiment_amazon")
    vi.add_argument("--results", type=Path, default=None,
                    help="an lm-eval results JSON: print the mean score per task type and view")
    vi.set_defaults(func=run)
