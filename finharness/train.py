"""``finharness train RECIPE.yaml``: LoRA / FTICL fine-tuning."""
from __future__ import annotations

import argparse
from pathlib import Path

from finharness.arguments import old_spelling


def run(args: argparse.Namespace) -> int:
    from training.recipe import load_recipe
    from training.run import train_recipe

    # A recipe with `seeds:` is one run per seed, each its own folder <name>-s<seed>.
    for recipe in load_recipe(args.recipe).per_seed():
        train_recipe(recipe, resume=args.resume, overwrite=args.overwrite, output_dir=args.output_dir,
                     include_paths=args.include_path or [], online=args.online)
    return 0


def register(sub) -> None:
    tr = sub.add_parser("train", help="LoRA / FTICL fine-tuning from a YAML recipe")
    tr.add_argument("recipe", type=Path, help="training recipe (see recipes/training/)")
    tr.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    tr.add_argument("--overwrite", action="store_true", help="discard an earlier run of the same name")
    tr.add_argument("--output_path", dest="output_dir", type=Path, default=None,
                    help="parent of the run folder (default: the recipe's output_dir)")
    old_spelling(tr, "--output-dir", "--output_path", "output_dir", type=Path)
    tr.add_argument("--include_path", action="append", default=None, metavar="DIR",
                    help="task folders beside the recipe's include_paths")
    tr.add_argument("--online", action="store_true", help="allow a Hub id as base_model")
    tr.set_defaults(func=run)
