"""``finharness merge RECIPE.yaml``: MergeKit merges, optionally chosen on development rows."""
from __future__ import annotations

import argparse
from pathlib import Path

from finharness.arguments import old_spelling, positive_limit


def run(args: argparse.Namespace) -> int:
    if args.methods:
        from tabulate import tabulate

        from merges.methods import method_table

        print(tabulate(method_table(), headers="keys", tablefmt="github"))
        print("\n* required. Per-model and shared parameters are MergeKit's own (its method registry); "
              "the density, LoRA-space and random columns are finharness's (merges/methods.py).")
        return 0
    if args.recipe is None:
        raise ValueError("give a merge recipe (or --methods to list the methods)")
    from merges.run import merge_recipe

    folders = merge_recipe(args.recipe, output_dir=args.output_dir, dry_run=args.dry_run)
    if args.select_on and not args.dry_run:
        from tabulate import tabulate

        from merges.select import select_point

        tasks = [t for t in args.select_on.split(",") if t]
        selection = select_point(folders, tasks, metric=args.metric, limit=args.limit)
        print(tabulate([{k: v for k, v in r.items() if k != "folder"} for r in selection["points"]],
                       headers="keys", tablefmt="github", floatfmt=".4f"))
        print(f"best on development rows ({args.metric}; no test document read): {selection['best']}")
    return 0


def register(sub) -> None:
    me = sub.add_parser("merge", help="merge fine-tuned models with MergeKit from a YAML recipe")
    me.add_argument("recipe", type=Path, nargs="?", help="merge recipe (see recipes/merges/)")
    me.add_argument("--methods", action="store_true", help="list the merge methods, what each takes and requires")
    me.add_argument("--output_path", dest="output_dir", type=Path, default=None,
                    help="parent of the merge folder (default: the recipe's output_dir)")
    old_spelling(me, "--output-dir", "--output_path", "output_dir", type=Path)
    me.add_argument(
        "--dry_run", action="store_true", help="check the recipe and print the MergeKit YAML; merge nothing"
    )
    old_spelling(me, "--dry-run", "--dry_run", "dry_run", flag=True)
    old_spelling(me, "--select-on", "--select_on", "select_on")
    me.add_argument("--select_on", default=None, metavar="TASKS",
                    help="score every merged point on these tasks' development rows (validation rows that repeat "
                         "no test document) and record the best (selection.json); comma-separated tasks or groups")
    me.add_argument("--metric", default="acc", help="the metric --select_on maximizes (task mean)")
    me.add_argument("--limit", type=positive_limit, default=None,
                    help="--select_on: validation documents per task (a seeded, label-stratified slice, "
                         "as eval --limit)")
    me.add_argument("--online", action="store_true", help="allow Hub ids org/name[@revision] as merge inputs")
    me.set_defaults(func=run)
