"""Product folders: one contract for everything finharness writes as a folder.

A converted model, a training run, a merge point, an evaluation and a board copy are each
built under a temporary name beside their final place, get one typed manifest
(``finharness.json``) written last, and are renamed into place. So a folder with a
manifest is finished, and a killed command leaves only a temporary folder behind:
``<name>.partial`` where work resumes (a training run's checkpoints), a hidden
``.<name>.partial-<pid>`` elsewhere. Readers load :class:`Manifest` through
:func:`read_manifest`, never a file name of their own.
"""
from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from plumbing.atomic import write_atomic

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
            raise FolderError(f"{folder} is a finished {manifest.kind.replace('_', ' ')}, not a {kind.replace('_', ' ')}")
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
    manifest = Manifest(kind=kind, finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), data=data)
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
