"""Product folders: one contract for everything finharness writes as a folder.

A converted model, a training run, a merge point, an evaluation and a board copy are each
built under a temporary name beside their final place, get one typed manifest
(``finharness.json``) written last, and are renamed into place. So a folder with a
manifest is finished, and a killed command leaves only a temporary folder behind:
``<name>.partial`` where work resumes (a training run's checkpoints), a hidden
``.<name>.partial-<pid>`` elsewhere. Writers that start from nothing use :func:`building`;
each kind's record (the manifest's ``data``) has its fields declared below and is checked
when written. Readers load :class:`Manifest` through :func:`read_manifest`, never a file
name of their own.

    with building(final, "merge") as build:
        ...write files into build.path...
        build.record = {"method": "ties", ...}    # manifest last, then the rename
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from plumbing.atomic import weight_write_errors, write_atomic

MANIFEST = "finharness.json"
Kind = Literal["model", "training_run", "merge", "evaluation", "board_copy"]
# The marker files of finharness 0.1, read so that folders made before the contract
# (converted models in ~/.cache, runs, merges, study evaluations) stay finished.
LEGACY: dict[str, tuple[str, ...]] = {
    "model": ("finharness_model.json",),
    "training_run": ("finharness_run.json",),
    "merge": ("finharness_merge.json",),
    "evaluation": ("finharness_eval.json", "finharness_validation.json"),
}


class _Record(TypedDict, total=False):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]  # a misspelt field is an error


class ModelRecord(_Record, total=False):
    """A converted embedded model."""
    name: str
    source: str
    gguf: str
    instruct: bool


class TrainingRunRecord(_Record, total=False):
    """A training run: what it trained, on what, how fast; ``instruct`` says how to prompt it."""
    name: str
    base_model: str
    base_checkpoint: str
    method: str
    prompt_format: str
    fticl_k: int
    tasks: list[dict[str, Any]]
    examples: int
    dropped: int
    truncated: int
    steps: int
    world_size: int
    precision: str
    seconds: float
    tokens_per_second: float
    final_loss: float
    peak_rss_mb: float
    peak_gpu_mb: float | None
    versions: dict[str, str]
    lineage: dict[str, Any]
    instruct: bool


class MergeRecord(_Record, total=False):
    """A merge point: its method, the route it took, its inputs and their lineage."""
    lineage: dict[str, Any]
    method: str
    route: str
    fast_path_refused: str | None
    seconds: float
    seed: int | None
    models: dict[str, str]


class EvaluationRecord(_Record, total=False):
    """A results folder: which checkpoint (a path, or a study's checkpoint), on which tasks and slice."""
    model: str
    checkpoint: dict[str, Any]
    revision: str
    setting: str
    shots: int | None
    tasks: list[str]
    limit: int | float | None
    split: str
    seconds: float


class BoardCopyRecord(_Record, total=False):
    """A submitter's results folder copied onto the board."""
    source: str
    model: str
    revision: str


RECORDS: dict[str, type] = {"model": ModelRecord, "training_run": TrainingRunRecord, "merge": MergeRecord,
                            "evaluation": EvaluationRecord, "board_copy": BoardCopyRecord}


def check_record(kind: Kind, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` checked against its kind's record (unknown or mistyped fields are errors)."""
    try:
        return TypeAdapter(RECORDS[kind]).validate_python(data)
    except ValidationError as err:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise FolderError(f"a {kind.replace('_', ' ')} manifest: {fields}") from None


class Manifest(BaseModel):
    """What a finished folder is, and the record of how it was made (``data``, per kind)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Kind
    finished_at: str
    data: dict[str, Any] = {}


class FolderError(ValueError):
    """A folder whose manifest is unreadable or of another kind; the message names it."""


def read_manifest(folder: str | Path, kind: Kind | None = None) -> Manifest | None:
    """The folder's manifest (None: not a finished product folder). ``kind`` refuses another kind."""
    folder = Path(folder)
    path = folder / MANIFEST
    if path.is_file():
        try:
            manifest = Manifest.model_validate(json.loads(path.read_text()))
        except (ValueError, ValidationError) as err:
            raise FolderError(f"{path}: not a finharness manifest ({err})") from None
        if kind is not None and manifest.kind != kind:
            raise FolderError(
                f"{folder} is a finished {manifest.kind.replace('_', ' ')}, not a {kind.replace('_', ' ')}"
            )
        return manifest
    for legacy_kind, names in LEGACY.items():
        if kind not in (None, legacy_kind):
            continue
        for name in names:
            if (folder / name).is_file():
                data = json.loads((folder / name).read_text())
                stamp = datetime.fromtimestamp((folder / name).stat().st_mtime, timezone.utc).isoformat()
                return Manifest(kind=legacy_kind, finished_at=stamp, data=data)
    return None


def is_finished(folder: str | Path, kind: Kind) -> bool:
    try:
        return read_manifest(folder, kind) is not None
    except FolderError:
        return False


def partial_dir(final: Path) -> Path:
    """Where resumable work lives until it finishes (a training run's checkpoints)."""
    return final.with_name(final.name + ".partial")


def scratch_dir(final: Path) -> Path:
    """A fresh hidden work folder beside ``final``, for work that restarts from nothing."""
    work = final.parent / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def finish(work: Path, final: Path, kind: Kind, data: dict[str, Any], *, replace: bool = True) -> Path:
    """Write the manifest last, then rename ``work`` to ``final``.

    ``replace``: an existing ``final`` is removed first (it was checked stale by the caller);
    otherwise a ``final`` that appeared meanwhile (a racing writer of the same content) wins
    and ``work`` is dropped.
    """
    manifest = Manifest(kind=kind, finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        data=check_record(kind, data))
    write_atomic(work / MANIFEST, manifest.model_dump_json(indent=2))
    if final.exists():
        if not replace:
            shutil.rmtree(work, ignore_errors=True)
            return final
        shutil.rmtree(final)
    try:
        work.rename(final)
    except OSError:
        if replace or not final.exists():
            raise
        shutil.rmtree(work, ignore_errors=True)  # the other writer renamed first
    return final


@dataclass
class Build:
    """A folder being built: write into ``path``; set ``record`` (the manifest's data) when done."""
    path: Path
    record: dict[str, Any] | None = None


@contextmanager
def building(final: Path, kind: Kind, *, replace: bool = True) -> Iterator[Build]:
    """Build ``final`` in a fresh hidden work folder beside it; on a clean exit write the manifest
    last and rename (:func:`finish`); on an error, or with no ``record`` set, keep nothing. The
    work folder never outlives the block."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    build = Build(scratch_dir(final))
    try:
        with weight_write_errors(final):
            yield build
        if build.record is None:
            raise FolderError(f"{final}: the {kind.replace('_', ' ')} ended without a record; nothing was kept")
        finish(build.path, final, kind, build.record, replace=replace)
    finally:
        shutil.rmtree(build.path, ignore_errors=True)
