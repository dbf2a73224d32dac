"""Choose a sweep's point on the validation split, never on the test split.

Each merged point is scored with ``finharness eval --split validation`` on the chosen
tasks; the point with the highest mean (tasks averaged, as the papers do) is recorded in
``<sweep>/selection.json`` with every point's scores. The test split is then scored once,
on the chosen point only.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from statistics import mean

from harness.measures import read_scores
from plumbing.atomic import write_atomic
from plumbing.folders import finish, is_finished, scratch_dir


def score_on_validation(folder: Path, out: Path, tasks: list[str], limit: int | None,
                        batch_size: int | str, device: str | None) -> Path:
    """Validation results of one merged checkpoint in ``out`` (kept: a re-run reuses them)."""
    from harness.evaluate import EvalRequest, run_eval

    if is_finished(out, "evaluation"):
        return out
    work = scratch_dir(out)
    try:
        run_eval(EvalRequest(model=str(folder), tasks=tasks, limit=limit, batch_size=batch_size, device=device,
                             output_path=work, split="validation"))
        finish(work, out, "evaluation", {"model": str(folder), "tasks": tasks, "limit": limit, "split": "validation"})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def select_point(folders: list[Path], tasks: list[str], metric: str = "acc", limit: int | None = None,
                 batch_size: int | str = 8, device: str | None = None) -> dict:
    """Score every point on validation; write and return the selection."""
    if len(folders) < 2:
        raise ValueError("--select-on needs a sweep (a recipe with `sweep:`): there is one merge, nothing to choose")
    root = folders[0].parent
    rows = []
    for folder in folders:
        out = score_on_validation(folder, root / "validation" / folder.name, tasks, limit, batch_size, device)
        scores = read_scores(out, metric)
        if not scores:
            raise ValueError(f"{out}: no task reported {metric!r}")
        rows.append({"point": folder.name, "folder": str(folder), f"mean {metric}": mean(scores.values()), **scores})
    best = max(rows, key=lambda r: r[f"mean {metric}"])
    selection = {"split": "validation", "metric": metric, "tasks": tasks, "limit": limit,
                 "best": best["folder"], "points": rows}
    write_atomic(root / "selection.json", json.dumps(selection, indent=2))
    return selection
