"""A study's evidence, small enough for the repository: ``finharness study pack`` and
``finharness study table --from``.

``pack`` writes ``<dir>/logs.tar.gz`` (default ``docs/results/<study>/``): for every finished
evaluation its manifest, results file and per-sample logs cut down to what the tables read
(document id, label set, per-label log-likelihoods, every per-document metric value), each
training run's loss log, the deviation measures and the claims lock; beside it the tables it
produced (``tables.md``, ``tables.json``, ``claims.json``) and its pictures (claims, losses).
``table --from`` unpacks it into a fresh output folder and renders the tables again from it,
with no model and no training: every number in the study's tables can be re-derived from the
repository.
"""
from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

from plumbing.atomic import write_atomic
from plumbing.folders import MANIFEST, is_finished
from study.spec import Study

ARCHIVE = "logs.tar.gz"
# Fields of an lm-eval per-sample row the tables never read: prompts, hashes, raw responses.
DROPPED = {"arguments", "resps", "doc_hash", "prompt_hash", "target_hash", "filter", "metrics"}


def compact_row(row: dict) -> dict:
    """One per-sample row with what the tables read: the label set of the document, the
    per-label log-likelihoods (multiple choice), and every per-document metric value."""
    from harness.discrimination import label_logliks

    out = {k: v for k, v in row.items() if k not in DROPPED and k not in ("doc", "filtered_resps")}
    choices = (row.get("doc") or {}).get("choices") if isinstance(row.get("doc"), dict) else None
    out["doc"] = {"choices": choices} if choices is not None else {}
    if label_logliks(row) is not None:
        out["filtered_resps"] = row["filtered_resps"]
    return out


def _compact_log(path: Path) -> bytes:
    from harness.contamination import read_sample_rows

    return "".join(json.dumps(compact_row(r)) + "\n" for r in read_sample_rows(path)).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644  # no dates: the same logs pack to the same bytes
    tar.addfile(info, io.BytesIO(data))


def pack(study: Study, out: Path) -> Path:
    """Write the study's compact evidence under ``out``; the archive's path."""
    root = Path(study.root)
    members: dict[str, bytes] = {}
    for step in study.evals:
        folder = Path(step.folder)
        if not is_finished(folder, "evaluation"):
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = str(path.relative_to(root))
            if path.name.startswith("samples_") and path.suffix == ".jsonl":
                members[name] = _compact_log(path)
            elif path.name == MANIFEST or (path.name.startswith("results_") and path.suffix == ".json"):
                members[name] = path.read_bytes()
    for recipe in study.train_recipes:
        log = recipe.run_dir() / "train_log.jsonl"
        if log.is_file():
            members[str(log.relative_to(root))] = log.read_bytes()
    for extra in sorted((root / "deviation").glob("*.json")) + [root / "claims.lock.json"]:
        if extra.is_file():
            members[str(extra.relative_to(root))] = extra.read_bytes()
    if not any(n.endswith(".jsonl") and "/samples_" in f"/{n}" for n in members):
        raise ValueError(f"{root}: no finished evaluation to pack (run the study first)")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name in sorted(members):
            _add(tar, name, members[name])
    out = Path(out)
    write_atomic(out / ARCHIVE, buffer.getvalue())
    pictures = sorted(p.name for pattern in ("*.svg", "*.png") for p in root.glob(pattern))
    for table in ("tables.md", "tables.json", "claims.json", *pictures):
        if (root / table).is_file():
            write_atomic(out / table, (root / table).read_bytes())
    return out / ARCHIVE


def unpack(archive: Path, root: Path) -> None:
    """The archive's files under ``root`` (a study's output folder); refuses a member that
    would land outside it (an absolute name, ``..``, a link)."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"{root} is not empty: unpack the study's logs into a fresh folder (--output_path)")
    with tarfile.open(archive, mode="r:gz") as tar:
        for member in tar.getmembers():
            target = (root / member.name).resolve()
            if not member.isfile() or not target.is_relative_to(root.resolve()):
                raise ValueError(f"{archive}: member {member.name!r} is not a plain file inside the study")
        tar.extractall(root, filter="data")


def tables_from(archive: Path, study: Study) -> Path:
    """Unpack ``archive`` into ``study``'s (fresh) output folder and render its tables there."""
    from study.tables import write_tables

    unpack(Path(archive), Path(study.root))
    return write_tables(study)
