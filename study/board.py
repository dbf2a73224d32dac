"""Every scored checkpoint of a study, submitted to the leaderboard from its results folder.

The board verifies each folder (it re-scores the logged samples with lm-eval's own
metric code) like any other submission; an entry already on the board is left as it is,
so re-running a study does not duplicate its rows (and a folder whose results the board
already holds, byte for byte, under its entry's name is not verified again).
"""
from __future__ import annotations

from pathlib import Path

from evidence.records import run_record
from evidence.result_files import load_results, results_file
from leaderboard.store import Board, DuplicateEntry, Entry
from leaderboard.submission import Submission
from leaderboard.submit import submit
from plumbing.folders import is_finished
from plumbing.logs import log
from study.spec import Checkpoint, Study

MODEL_TYPE = {"single": "fine-tuned", "multi": "fine-tuned", "merged": "merged"}


def entry_name(study: Study, point: Checkpoint, set_name: str) -> str:
    """The board name of one checkpoint scored on one eval set: ``<study>/<label>[ FTICL-kN][ [set]]``."""
    return (f"{study.spec.name}/{point.label}" + (f" FTICL-k{point.fticl}" if point.fticl else "")
            + (f" [{set_name}]" if len(study.eval.sets) > 1 else ""))


def submit_study(study: Study, board: Board | None = None) -> list[int]:
    board = board or Board()
    models = {m.label: m for m in study.spec.models}
    vanillas = {c.model: c for c in study.checkpoints if c.role == "vanilla"}
    added = []
    on_board = board.entries()
    # Vanilla entries first, so each fine-tuned or merged entry finds its reference on the board.
    for step in sorted(study.evals, key=lambda s: s.checkpoint.role != "vanilla"):
        folder = Path(step.folder)
        if step.split != "test" or not is_finished(folder, "evaluation"):
            continue  # development rows are the gates' alone: never on the board
        point = step.checkpoint
        vanilla = models[point.model]
        name = entry_name(study, point, step.set_name)
        if _already_submitted(on_board, name, folder):
            continue
        results = load_results(results_file(folder))
        sub = Submission(
            model=name,
            model_type=MODEL_TYPE.get(point.role, "instruct" if vanilla.prompt_format == "instruct" else "pretrained"),
            weight_type="original", precision=run_record(results).get("dtype", "float32"),
            chat_template=bool(run_record(results).get("chat_template")),
            # What the weights came from, and (not the same thing) the board entry the
            # seen gain and forgetting are measured against: the vanilla model on the same set.
            base_model=None if point.role == "vanilla" else vanilla.model,
            reference=None if point.role == "vanilla" else entry_name(study, vanillas[point.model], step.set_name),
            recipe=point.recipe, results=str(folder),
            notes=f"{study.spec.paper}; {step.setting}; task set {step.set_name}",
        ).beside(study.root)  # the study's own recipes/ folder holds each checkpoint's recipe
        try:
            added.append(submit(sub, board))
        except DuplicateEntry:
            continue
    log.info(f"leaderboard {board.path}: {len(added)} new entries from {study.spec.name}")
    return added


def _already_submitted(entries: list[Entry], name: str, folder: Path) -> bool:
    """The board keeps a byte copy of every results folder it accepts: an entry of this name
    holding this very results file is this evaluation, verified when it was submitted."""
    ours = results_file(folder).read_bytes()
    for entry in entries:
        if entry.model != name:
            continue
        try:
            if results_file(Path(entry.results_path)).read_bytes() == ours:
                return True
        except (OSError, ValueError):  # the board's copy is gone: submit, and let the board decide
            continue
    return False
