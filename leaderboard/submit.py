"""``finharness leaderboard submit``: check a submission, score it if needed, record it.

Order matters: everything that can refuse a submission runs before anything is written,
and the board row is the last write. A refused submission leaves the board as it was.

- checkpoint: safetensors only, no custom code, the right architecture for its base
  model; pinned by the fingerprint of its bytes (as the Hub pins a commit); scored with
  ``finharness eval`` into the board's ``results/`` folder, named by revision and
  settings, so a re-submission reuses a folder that verifies instead of scoring again
  (and a duplicate is refused then, without a second evaluation).
- results folder: verified against its per-sample logs (``leaderboard/verify.py``),
  cross-checked against the submission's fields, and copied into the board's folder so
  the logs the entry rests on stay with it.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from evidence.records import BoardContamination, EntryMetadata, run_record
from leaderboard.store import Board, settings_key
from leaderboard.submission import Submission, SubmissionError, read_recipe
from leaderboard.verify import VerifiedResults, verify_results
from plumbing.checkpoints import (
    CheckpointError,
    check_same_architecture,
    refuse_pickles,
    resolve_checkpoint,
    resolve_model,
)
from plumbing.folders import building
from plumbing.logs import log


def check_checkpoint_files(folder: Path) -> None:
    """The Open LLM Leaderboard's rules: safetensors weights, nothing that runs code."""
    try:
        refuse_pickles(Path(folder), "checkpoint")
    except CheckpointError as err:
        raise SubmissionError(str(err)) from None
    code = sorted(p.name for p in Path(folder).rglob("*.py"))
    if code:
        raise SubmissionError(f"checkpoint {folder}: Python files {', '.join(code)}; "
                              "custom model code is refused (trust_remote_code stays off)")
    config = Path(folder) / "config.json"
    if config.is_file() and "auto_map" in json.loads(config.read_text()):
        raise SubmissionError(f"checkpoint {folder}: config.json has auto_map (custom model code); "
                              "trust_remote_code stays off")


def _settings_of(verified: VerifiedResults) -> tuple[list[str], int, float | None]:
    # The shots and limit every task's logged prompts and documents were checked against,
    # never an unchecked field.
    return sorted(verified.scores), max(verified.shots.values(), default=0), verified.limit


def _cross_check(sub: Submission, meta: dict, source: Path) -> None:
    """A results folder made by ``finharness eval`` says how it was made; it must agree."""
    checks = {
        "chat_template": (sub.chat_template, meta.get("chat_template")),
        "precision": (sub.precision, meta.get("dtype")),
        "weight_type": (sub.weight_type, meta.get("weight_type")),
    }
    for field, (claimed, recorded) in checks.items():
        if recorded is not None and claimed != recorded:
            raise SubmissionError(f"{source}: the submission says {field}={claimed!r}, "
                                  f"but the results were made with {recorded!r}")


def _refuse_links(folder: Path) -> None:
    """Nothing is read or copied through a link: a link in a submitted folder could point
    at any file on the board's machine and land its content in the board's store. Nor from
    anything but a plain file: a FIFO named results_x.json would hang the board on its read."""
    entries = list(Path(folder).rglob("*"))
    links = [p for p in entries if p.is_symlink()]
    if links:
        raise SubmissionError(f"{folder}: symbolic link(s) {', '.join(str(p.relative_to(folder)) for p in links)}; "
                              "submit plain files only")
    special = [p for p in entries if not (p.is_file() or p.is_dir())]
    if special:
        raise SubmissionError(f"{folder}: {', '.join(str(p.relative_to(folder)) for p in special)} is not a plain "
                              "file (a pipe, socket or device); submit plain files only")


def _copy_atomic(source: Path, target: Path, entry: dict) -> None:
    """Copy into a work folder, manifest last, rename. ``target`` is named by content, so
    an existing one (a racing submitter, or a submit that died after copying) already
    holds the same files and is kept."""
    if target.exists():
        return
    with building(target, "board_copy", replace=False) as build:
        shutil.copytree(source, build.path, dirs_exist_ok=True)
        build.record = {"source": str(source), **entry}


def _score(sub: Submission, board: Board, include: list[str],
           eval_options: dict) -> tuple[Path, str, VerifiedResults]:
    from harness.evaluate import EvalRequest, run_eval
    from plumbing.checkpoints import model_fingerprint

    weight = sub.weight_type
    # For original weights the base model is the forgetting reference, not something to load.
    load_base = sub.base_model if weight != "original" else None
    path = Path(sub.checkpoint)
    if path.exists():
        check_checkpoint_files(path)
    resolved = resolve_model(sub.checkpoint, load_base, weight)
    if weight == "original" and sub.base_model:
        try:
            base = resolve_checkpoint(sub.base_model)
        except CheckpointError:
            base = None  # a base the board cannot load (e.g. a Hub id offline): nothing to compare
        if base is not None:
            check_same_architecture(resolved.checkpoint, base)
    revision = model_fingerprint(resolved.folders)
    if sub.revision and sub.revision != revision:
        raise SubmissionError(f"revision: {sub.revision!r} given, but the checkpoint's content fingerprint "
                              f"is {revision!r}; leave revision out for a local checkpoint")
    request = dict(tasks=sub.tasks, num_fewshot=sub.num_fewshot or None, limit=sub.limit, sample=sub.sample,
                   seed=sub.seed)
    out = board.results_dir(sub.model, revision, json.dumps({**request, "include": include}, sort_keys=True))
    try:  # scored already (an earlier submit that stopped after scoring): reuse it
        verified = verify_results(out, include)
        if run_record(verified.data).get("revision") == revision:
            log.info(f"{sub.model}: already scored in {out}")
            return out, revision, verified
    except ValueError:
        pass
    log.info(f"scoring {sub.model} ({resolved.describe()}) into {out}")
    # Scored into a work folder with a manifest, as every product folder: a killed scoring leaves
    # nothing that a later submit could take for finished results.
    with building(out, "evaluation") as build:
        run_eval(EvalRequest(
            model=sub.checkpoint, base_model=load_base, weight_type=weight,
            dtype=sub.precision, chat_template="on" if sub.chat_template else "off", output_path=build.path,
            log_samples=True, include_paths=[Path(p) for p in include], revision=revision, **request,
            **eval_options))
        build.record = {"model": sub.checkpoint, "revision": revision, "tasks": sub.tasks, "limit": sub.limit}
    return out, revision, verify_results(out, include)


def _lineage(sub: Submission, verified: VerifiedResults):
    """The scored checkpoint's training lineage: read from its folder when the board can see the
    very weights that were scored (a local checkpoint, or a results' model folder whose content
    fingerprint is the results' revision); unknown otherwise."""
    from evidence.contamination import scored_lineage
    from plumbing.checkpoints import model_fingerprint
    from plumbing.lineage import Lineage

    meta = run_record(verified.data)
    folder = Path(sub.checkpoint or meta.get("model") or "")
    if not (str(folder) and folder.is_dir()):
        return Lineage("unknown", why="the board cannot see the scored checkpoint's folder")
    if sub.checkpoint is None and model_fingerprint([folder]) != meta.get("revision"):
        return Lineage("unknown", why=f"{folder} is not the checkpoint the results were scored on")
    return scored_lineage(folder, meta)  # and its lineage file the one the scoring read (C5)


def _contamination(sub: Submission, verified: VerifiedResults, include: list[str]) -> BoardContamination:
    """Per task: the share of scored documents the model may have seen, and the clean subset's scores."""
    from evidence.contamination import board_contamination
    from fin_tasks.index import task_manager

    lineage = _lineage(sub, verified)
    manager = task_manager([Path(p) for p in include])
    return BoardContamination(lineage=lineage.status, lineage_note=lineage.describe(),
                              tasks=board_contamination(verified.path.parent, list(verified.scores), manager, lineage))


def submit(sub: Submission, board: Board, include_paths: list[str | Path] = (), **eval_options) -> int:
    """Validate, score if needed, verify and record ``sub``; the new entry's id.

    ``include_paths`` adds task folders to the submission's own ``include_paths``."""
    from fin_tasks.index import include_paths as checked
    from fin_tasks.sandbox import TaskFolderCode, refuse_code

    include = [str(p) for p in checked([*sub.include_paths, *include_paths])]
    try:  # first of all: nothing below may import or render a line of a folder that runs code
        refuse_code(include, where="include_paths:")
    except TaskFolderCode as err:
        raise SubmissionError(str(err)) from None
    recipe_text = read_recipe(sub)

    if sub.checkpoint is not None:
        results_dir, revision, verified = _score(sub, board, include, eval_options)
    else:
        source = Path(sub.results)
        _refuse_links(source)
        verified = verify_results(source, include)
        meta = run_record(verified.data)
        _cross_check(sub, meta, verified.path)
        revision = meta.get("revision") or sub.revision
        if not revision:
            raise SubmissionError(f"{verified.path}: not made by `finharness eval`, so give `revision` "
                                  "(the commit or content hash of the weights scored)")
        if sub.revision and meta.get("revision") and sub.revision != meta["revision"]:
            raise SubmissionError(
                f"revision: {sub.revision!r} given, but the results were made from {meta['revision']!r}"
            )
        results_dir = None

    contamination = _contamination(sub, verified, include)
    tasks, shots, limit = _settings_of(verified)
    settings = settings_key(tasks, shots, limit, verified.external, verified.sample, verified.seed, verified.rule)
    fields = dict(
        model=sub.model, revision=revision, precision=sub.precision, weight_type=sub.weight_type,
        chat_template=sub.chat_template, settings=settings, model_type=sub.model_type,
        base_model=sub.base_model, recipe=sub.recipe, recipe_text=recipe_text,
        scores=verified.scores, docs=verified.docs,
        # The roles and file hashes of the tasks, as verified: the board places a user's
        # held-out task without its folder, and says which files it was scored on.
        metadata=EntryMetadata(**{**sub.model_dump(mode="json"), "include_paths": include},
                               roles=verified.roles, external_tasks=verified.external, baselines=verified.baselines,
                               intervals=verified.intervals, contamination=contamination,
                               # The model family, as the evaluation recorded it (a filter, not a score).
                               architecture=run_record(verified.data).get("architecture")),
    )
    board.check_new(fields)  # before the copy below
    if results_dir is None:
        content = hashlib.sha256(verified.path.read_bytes()).hexdigest()
        results_dir = board.results_dir(sub.model, revision, settings + content)
        _copy_atomic(Path(sub.results), results_dir, {"model": sub.model, "revision": revision})
    return board.add({**fields, "results_path": str(results_dir)})
