"""Finding and reading the files lm-eval writes under an ``--output_path`` folder.

lm-eval names them ``results_<timestamp>.json`` and ``samples_<task>_<timestamp>.jsonl``.
A plain glob ``samples_gen_nli_rte_*`` also matches ``samples_gen_nli_rte_mc_<timestamp>``,
so names are matched whole, with the timestamp; the newest (the timestamp sorts by time)
wins.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from plumbing.jsonl import jsonl_rows

TIMESTAMP = r"\d{4}-\d{2}-\d{2}T[\d.-]+"


def newest(folder: Path, prefix: str, suffix: str, what: str) -> Path:
    """The newest ``<prefix>_<timestamp><suffix>`` under ``folder``; an error naming ``what`` if none."""
    name = re.compile(rf"{re.escape(prefix)}_{TIMESTAMP}{re.escape(suffix)}")
    found = sorted((p for p in Path(folder).rglob(f"{prefix}_*{suffix}") if name.fullmatch(p.name)),
                   key=lambda p: p.name)
    if not found:
        raise ValueError(f"{folder}: no {what} ({prefix}_<timestamp>{suffix})")
    return found[-1]


def results_file(folder: Path) -> Path:
    return newest(folder, "results", ".json", "lm-eval results file")


def samples_file(folder: Path, task: str) -> Path:
    return newest(folder, f"samples_{task}", ".jsonl", f"per-sample log of {task}")


def logged_tasks(folder: Path) -> list[str]:
    """The tasks with a per-sample log under ``folder`` (each once, sorted)."""
    name = re.compile(rf"samples_(.+)_{TIMESTAMP}\.jsonl")
    return sorted({m.group(1) for p in Path(folder).rglob("samples_*.jsonl") if (m := name.fullmatch(p.name))})


def sample_rows(path: Path, fields: tuple[str, ...] = ("doc_id",),
                error: type[Exception] = ValueError) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` of an lm-eval per-sample log; a row without ``fields`` is an error."""
    for lineno, row in jsonl_rows(path, error):
        missing = [f for f in fields if not isinstance(row, dict) or f not in row]
        if missing:
            raise error(f"{path}:{lineno}: not an lm-eval sample row (no field(s) {missing})")
        yield lineno, row


def load_results(path: Path) -> dict[str, Any]:
    """An lm-eval results JSON; anything else is an error naming the file."""
    try:
        data = json.loads(Path(path).read_text())
        if not isinstance(data.get("results"), dict):
            raise KeyError("results")
    except (OSError, ValueError, KeyError, AttributeError, RecursionError) as err:
        # RecursionError: 100,000 nested brackets; ValueError: bad JSON, or an integer too long to read
        raise ValueError(f"{path}: not an lm-eval results file ({type(err).__name__}: {str(err)[:200]})") from None
    return data
