"""Every scored checkpoint of a study, submitted to the leaderboard from its results folder.

The board verifies each folder (it re-scores the logged samples with lm-eval's own
metric code) like any other submission; an entry already on the board is left as it is,
so re-running a study does not duplicate its rows.
"""
from __future__ import annotations

import json
from pathlib import Path

from leaderboard.store import Board, DuplicateEntry
from leaderboard.submission import Submission
from leaderboard.submit import submit
from study.run import EVAL_DONE
from study.spec import Study

MODEL_TYPE = {"single": "fine-tuned", "multi": "fine-tuned", "merged": "merged"}


def submit_study(study: Study, say=print, board: Board | None = None) -> list[int]:
    board = board or Board()
    models = {m.label: m for m in study.spec.models}
    added = []
    for step in study.evals:
        folder = Path(step.folder)
        if not (folder / EVAL_DONE).is_file():
            continue
        point = step.checkpoint
        vanilla = models[point.model]
        results = json.loads(next(folder.rglob("results_*.json")).read_text())
        sub = Submission(
            model=f"{study.spec.name}/{point.label}" + (f" FTICL-k{point.fticl}" if point.fticl else "")
            + (f" [{step.set_name}]" if len(study.eval.sets) > 1 else ""),
            model_type=MODEL_TYPE.get(point.role, "instruct" if vanilla.prompt_format == "instruct" else "pretrained"),
            weight_type="original", precision=results.get("finharness", {}).get("dtype", "float32"),
            chat_template=bool(results.get("finharness", {}).get("chat_template")),
            base_model=None if point.role == "vanilla" else vanilla.model,
            recipe=point.recipe, results=str(folder),
            notes=f"{study.spec.paper}; {step.setting}; task set {step.set_name}",
        )
        try:
            added.append(submit(sub, board, say=lambda *a: None))
        except DuplicateEntry:
            continue
    say(f"leaderboard {board.path}: {len(added)} new entries from {study.spec.name}")
    return added
