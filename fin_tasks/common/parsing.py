"""Read a class label out of a short free-text answer."""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=256)
def _pattern(choices: tuple[str, ...]) -> re.Pattern:
    # Longest first, so "owner of" is not read as a shorter label it contains;
    # word boundaries, so "up" does not match inside "upgrade".
    ordered = sorted(choices, key=len, reverse=True)
    alternation = "|".join(re.escape(c.lower()) for c in ordered)
    return re.compile(rf"(?<![\w/])(?:{alternation})(?![\w/])")


def parse_label(text: str, choices: Sequence[str]) -> int:
    """Index of the first label (case-insensitive, whole words) in ``text``, else -1.

    The earliest mention wins: models often answer "Negative. The text is not
    positive", and the first word is the answer.
    """
    match = _pattern(tuple(choices)).search(text.lower())
    if match is None:
        return -1
    said = match.group(0)
    return next(i for i, c in enumerate(choices) if c.lower() == said)
