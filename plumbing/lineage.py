"""What a checkpoint was fine-tuned on, as far as finharness knows: its *lineage*.

A training run records a fingerprint of every text it showed the model (``lineage.npz``
and a summary under ``lineage`` in its manifest, training/run.py); a merge records the
union of its inputs' (merges/run.py). Anything else, a converted embedded model, a Hub
checkpoint, a merge with an input of unknown lineage, reads ``unknown``: never ``clean``.
A known lineage covers the fine-tuning finharness did, not the base model's pretraining,
which no one here can see.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plumbing.fingerprints import LINEAGE_FILE, Fingerprint
from plumbing.folders import FolderError, read_manifest
from plumbing.vocabulary import LineageStatus

PRETRAINING = "the base model's pretraining data are not known"


@dataclass
class Lineage:
    status: LineageStatus
    fingerprint: Fingerprint | None = None
    record: dict[str, Any] = field(default_factory=dict)  # the manifest's summary
    why: str = ""  # for unknown: why
    digest: str | None = None  # sha256 of the lineage file read (a scoring records it: the pin)

    def describe(self) -> str:
        if self.status == "unknown":
            return f"unknown ({self.why})"
        return f"known: {self.record.get('texts', len(self.fingerprint or ()))} training texts ({PRETRAINING})"


def read_lineage(checkpoint: str | Path) -> Lineage:
    folder = Path(checkpoint)
    if not folder.is_dir():
        return Lineage("unknown", why=f"{checkpoint} is not a local finharness run or merge")
    try:
        manifest = read_manifest(folder)
        if manifest is None and folder.name == "adapter":  # a run's LoRA adapter: the run holds the record
            manifest, folder = read_manifest(folder.parent), folder.parent
    except FolderError as err:
        return Lineage("unknown", why=str(err))
    if manifest is None or manifest.kind not in ("training_run", "merge"):
        return Lineage("unknown", why=f"{folder.name} has no lineage record (a converted or external checkpoint)")
    record = manifest.data.get("lineage")
    if not isinstance(record, Mapping):
        return Lineage("unknown", why=f"{folder.name} was made before finharness recorded lineage")
    if record.get("status") != "known":
        return Lineage("unknown", record=dict(record), why=str(record.get("why") or "its record says unknown"))
    path = folder / str(record.get("file", LINEAGE_FILE))
    if not path.resolve().is_relative_to(folder.resolve()):  # C3: a record names a file of its own folder only
        return Lineage("unknown", record=dict(record),
                       why=f"{folder.name}'s lineage record names {record.get('file')!r}, outside its folder")
    try:
        fingerprint = Fingerprint.load(path)
    except (ValueError, FileNotFoundError) as err:
        return Lineage("unknown", record=dict(record), why=f"{path}: {err}")
    import hashlib

    return Lineage("known", fingerprint, dict(record), digest=hashlib.sha256(path.read_bytes()).hexdigest())


def merge_lineage(inputs: Mapping[str, str | Path], work: Path) -> dict[str, Any]:
    """The union of a merge's inputs' lineage, written to ``work``; its manifest summary.

    An input without a record is fine when it is the pretrained base a known input was
    fine-tuned from (task arithmetic adds task vectors back onto it); any other makes the
    merge's lineage unknown, naming it."""
    found = {label: read_lineage(path) for label, path in inputs.items()}
    known = {label: lin for label, lin in found.items() if lin.status == "known"}
    bases = set()
    for lin in known.values():
        for key in ("base_model", "base_checkpoint"):
            if lin.record.get(key):
                bases.add(str(lin.record[key]))
                if key == "base_checkpoint":
                    bases.add(str(Path(str(lin.record[key])).resolve()))
        bases.update(str(b) for b in lin.record.get("bases", ()))
    unknown = [label for label, lin in found.items() if lin.status != "known"
               and not {label, str(inputs[label]), str(Path(str(inputs[label])).resolve())} & bases]
    if unknown or not known:
        why = ("inputs without lineage: " + ", ".join(f"{u} ({found[u].why})" for u in unknown)) if unknown \
            else "no input has a lineage record"
        return {"status": "unknown", "why": why}
    union = None
    for lin in known.values():
        union = lin.fingerprint if union is None else union.union(lin.fingerprint)
    union.save(work / LINEAGE_FILE)
    tasks: dict[str, Any] = {}
    for label, lin in known.items():
        for task, summary in (lin.record.get("tasks") or {}).items():
            tasks.setdefault(task, []).append({"input": label, **summary})
    return {"status": "known", "file": LINEAGE_FILE, "texts": len(union), "ngrams": sorted(union.ngrams),
            "inputs": {label: found[label].status if label in known else "pretrained base" for label in inputs},
            "bases": sorted(bases), "tasks": tasks}
