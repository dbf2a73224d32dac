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
