"""Argument types shared by several subcommands, checked before any model loads."""
from __future__ import annotations

import argparse
import math


def positive_limit(text: str) -> int | float:
    """A document count (>= 1) or a fraction of each task (< 1); checked before any model loads."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--limit must be a number, not {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"--limit must be a positive, finite number, not {text}")
    if value >= 1 and not value.is_integer():
        # lm-eval reads a limit of 1 or more as a count: 1.5 would silently score one document.
        raise argparse.ArgumentTypeError(f"--limit {text}: a count of documents must be a whole number "
                                         f"(a fraction of each task must be below 1)")
    return int(value) if value >= 1 else value


def shot_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--num_fewshot must be a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--num_fewshot must be 0 or more, not {text}")
    return value


def seed_value(text: str) -> int:
    """A seed numpy and torch both take: a whole number in [0, 2**32)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be a whole number, not {text!r}") from None
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"--seed must be in [0, 2**32), not {text}")
    return value


class _OldSpelling(argparse.Action):
    """An option's former spelling: still accepted, with a one-line notice naming the new one."""

    def __init__(self, option_strings, dest, new: str, flag: bool = False, append: bool = False, **kwargs):
        self.new, self.flag, self.append = new, flag, append
        super().__init__(option_strings, dest, nargs=0 if flag else None, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        import sys

        print(f"finharness: {option_string} is now spelled {self.new} (as lm-eval spells its options); "
              "the old spelling goes in finharness 0.3", file=sys.stderr)
        if self.append:
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, True if self.flag else values)


def old_spelling(parser: argparse.ArgumentParser, old: str, new: str, dest: str, *, flag: bool = False,
                 append: bool = False, type=None) -> None:
    """Accept ``old`` for the option now spelled ``new`` (hidden from --help)."""
    parser.add_argument(old, dest=dest, action=_OldSpelling, new=new, flag=flag, append=append,
                        help=argparse.SUPPRESS, default=argparse.SUPPRESS, **({"type": type} if type else {}))
