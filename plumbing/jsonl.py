"""Reading JSONL (task data, lm-eval's per-sample logs, training logs): one reader.

Each row comes with its line number, and a line that is not UTF-8 or not JSON is an
error naming ``file:line``, raised as the caller's error type (a task's data error, a
tampered log, ...), so a reader never sees a half-written file as fewer rows.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def jsonl_rows(path: Path, error: type[Exception] = ValueError) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed row)`` for every non-blank line of ``path``."""
    with Path(path).open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise error(f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[err.start]:02x} at "
                            f"column {err.start + 1}); save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as err:
                raise error(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
