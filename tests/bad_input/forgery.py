"""What a careful forger does to a results folder, and a submission file to carry it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from evidence.result_files import results_file, samples_file
from leaderboard.verify import _task_hash


def submission(folder: Path, **fields) -> Path:
    data = {"model_type": "pretrained", "weight_type": "original", "precision": "float32", "chat_template": False,
            "model": "m", **fields}
    path = folder / "submission.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def rows_of(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def recompute(folder: Path, task: str, rows: list[dict]) -> None:
    """After editing a log: aggregates, counts and hashes recomputed to match."""
    from fin_tasks.index import task_manager

    samples_file(folder, task).write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = results_file(folder)
    data = json.loads(path.read_text())
    aggregation = task_manager().load([task])["tasks"][task].aggregation()
    for key in list(data["results"][task]):
        metric = key.partition(",")[0]
        if metric in aggregation and "stderr" not in metric:
            data["results"][task][key] = float(aggregation[metric]([r[metric] for r in rows]))
    data["n-samples"][task] = {"original": 970, "effective": len(rows)}
    data["task_hashes"][task] = _task_hash(rows)
    path.write_text(json.dumps(data))


def cherry_picked(source: Path, tmp_path: Path, declare) -> Path:
    """A copy of ``source`` keeping only rows 0 and 3 of FPB (say, the two answered correctly),
    every aggregate recomputed to match, and the results edited by ``declare`` to claim a
    slice of two."""
    forged = shutil.copytree(source, tmp_path / "forged")
    rows = rows_of(samples_file(forged, "fin_fpb"))
    recompute(forged, "fin_fpb", [rows[0], rows[3]])
    data = json.loads(results_file(forged).read_text())
    declare(data)
    results_file(forged).write_text(json.dumps(data))
    return forged
