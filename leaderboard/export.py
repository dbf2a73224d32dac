"""The board as data: ``show --format json|csv|markdown`` and ``leaderboard export DIR``.

``export`` writes what the Open LLM Leaderboard and the Open FinLLM Leaderboard publish as
datasets, so a board can be pushed as one:

    DIR/contents.jsonl                         one row per entry: the board's columns
    DIR/results/<model>/results_<id>.json      {"config": {model_name, model_sha, model_dtype, ...},
                                                "results": {task: {metric: score}}, "finharness": {...}}
    DIR/details/<model>/<id>/samples_<task>_<timestamp>.jsonl
                                               the per-sample logs the entry was verified from

Every file is written atomically; the details are copies of the board's own stored result
folders, never of a submitter's.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lm_eval.utils import sanitize_model_name

from leaderboard.store import Entry
from leaderboard.table import SUMMARY_COLUMNS, board_columns, board_rows, sort_rows
from plumbing.atomic import write_atomic

DATA_FORMATS = ("json", "csv")


def rows_as(fmt: str, entries: list[Entry], metric: str = "acc", sort: str = "unseen_norm", ascending: bool = False,
            roles: Mapping[str, str] | None = None) -> str:
    """The board's rows as JSON (a list of objects, numbers as numbers) or CSV (one header row)."""
    rows, tasks = board_rows(entries, metric, roles)
    rows = sort_rows(rows, sort, ascending) if rows else rows
    columns = board_columns(tasks)
    picked = [{c: r.get(c) for c in columns} for r in rows]
    if fmt == "json":
        return json.dumps(picked, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: "" if v is None else v for c, v in r.items()} for r in picked)
        return out.getvalue()
    raise ValueError(f"--format {fmt}: the data formats are {', '.join(DATA_FORMATS)}")


def entry_results(entry: Entry, row: Mapping[str, Any]) -> dict[str, Any]:
    """One entry in the Open LLM Leaderboard results-file layout, with finharness's own fields."""
    return {
        "config": {"model_name": entry.model, "model_sha": entry.revision, "model_dtype": entry.precision,
                   "model_type": entry.model_type, "weight_type": entry.weight_type,
                   "base_model": entry.base_model, "merged": entry.model_type == "merged",
                   "chat_template": entry.chat_template, "settings": entry.settings,
                   "submitted_at": entry.submitted_at},
        "results": entry.scores,
        "docs": entry.docs,
        "finharness": {
            **{k: row.get(k) for k in SUMMARY_COLUMNS},
            "baselines": entry.metadata.get("baselines") or {},
            "intervals": entry.metadata.get("intervals") or {},
            "roles": entry.metadata.get("roles") or {},
            "recipe": entry.recipe, "board_id": entry.id,
        },
    }


def safe_name(model: str) -> str:
    """A submitted model name as one folder name: ``org/name`` -> ``org__name`` (as lm-eval writes
    it), any other character outside ``[A-Za-z0-9._-]`` -> ``_``, and never ``.`` or ``..``."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", sanitize_model_name(model))
    return name if name.strip(".") else name.replace(".", "_") or "_"


def _target(out: Path, *parts: str) -> Path:
    """``out/parts...``, refusing a link or a file anywhere below ``out`` on the way: export never
    writes outside the folder it was given."""
    path = out
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise ValueError(f"leaderboard export: {path} is a symbolic link; export writes only inside {out}")
    for parent in path.parents:
        if parent == out.parent:
            break
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"leaderboard export: {parent} is a file, not a folder")
    return path


def export(entries: list[Entry], out: Path, metric: str = "acc", roles: Mapping[str, str] | None = None) -> Path:
    """Write the board under ``out`` as the dataset files described above."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"leaderboard export: {out} is a file, not a folder")
    rows, tasks = board_rows(entries, metric, roles)
    by_id = {r["id"]: r for r in rows}
    columns = board_columns(tasks)
    write_atomic(_target(out, "contents.jsonl"),
                 "".join(json.dumps({c: by_id[e.id].get(c) for c in columns}) + "\n" for e in entries))
    for e in entries:
        folder = safe_name(e.model)
        write_atomic(_target(out, "results", folder, f"results_{e.id}.json"),
                     json.dumps(entry_results(e, by_id[e.id]), indent=2))
        stored = Path(e.results_path)
        for path in sorted(stored.rglob("samples_*.jsonl")) if stored.is_dir() else []:
            target = _target(out, "details", folder, str(e.id), path.name)
            write_atomic(target, path.read_bytes())  # a temporary file of its own: no fixed name to plant a link at
    return out
