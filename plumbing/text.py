"""Text a user or submitter chose, made safe to print: control and bidirectional-override
characters are shown as escapes, never sent to a terminal or a page raw.

An ANSI escape in a model name rewrites a terminal line (``\\x1b[2K``); a right-to-left
override (U+202E) makes ``gpt-2evil`` read as another name. :func:`unsafe_characters` finds
them (the board and ``validate`` refuse names that hold any); :func:`printable` escapes them
where older records are shown.
"""
from __future__ import annotations

import unicodedata

# Explicit bidi embeddings, overrides and isolates, and the marks that steer them.
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def _unsafe(char: str) -> bool:
    return char in BIDI_CONTROLS or (unicodedata.category(char) in ("Cc", "Cf") and char not in "\n\t")


def unsafe_characters(text: str) -> list[str]:
    """The control and bidi characters of ``text``, each as its escape (``\\x1b``, ``\\u202e``)."""
    return sorted({char.encode("unicode_escape").decode() for char in text if _unsafe(char)})


def printable(text: str) -> str:
    """``text`` with every control and bidi character shown as its escape."""
    return "".join(char.encode("unicode_escape").decode() if _unsafe(char) else char for char in text)
