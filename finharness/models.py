"""``finharness models list | path``: the embedded default models."""
from __future__ import annotations

import argparse
from plumbing.checkpoints import CheckpointError


def run(args: argparse.Namespace) -> int:
    from plumbing.checkpoints import EMBEDDED, convert_embedded, embedded_path

    if args.action == "list":
        for name, model in EMBEDDED.items():
            kind = "instruct" if model.instruct else "base"
            print(f"{name:24s} {kind:9s} {model.hf_id:40s} {embedded_path(name)}")
        return 0
    for name in args.names or list(EMBEDDED):
        if name not in EMBEDDED:
            raise CheckpointError(f"unknown embedded model {name!r} (known: {', '.join(EMBEDDED)})")
        print(convert_embedded(name))
    return 0


def register(sub) -> None:
    mo = sub.add_parser("models", help="embedded default models: list, or convert and print their paths")
    mo.add_argument(
        "action",
        choices=["list", "path"],
        help="list: the embedded models; path: convert them (once) and print their folders",
    )
    mo.add_argument("names", nargs="*", help="embedded model names (default: all)")
    mo.set_defaults(func=run)
