"""A study's evidence, small enough for the repository: ``finharness study pack`` and
``finharness study table --from``.

``pack`` writes ``<dir>/logs.tar.gz`` (default ``docs/results/<study>/``): for every finished
evaluation its manifest, results file and per-sample logs cut down to what the tables read
(document id, label set, per-label log-likelihoods, every per-document metric value), each
training run's loss log, the deviation measures and the claims lock; beside it the tables it
produced (``tables.md``, ``tables.json``, ``claims.json``, the run's record ``run.json``) and
its pictures (claims, losses).
``table --from`` unpacks it into a fresh output folder and renders the tables again from it,
with no model and no training: every number in the study's tables can be re-derived from the
repository.
"""
from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
import zlib
from pathlib import Path

from evidence.contamination import read_sample_rows
from evidence.discrimination import label_logliks
from evidence.generation_baselines import is_generation_row
from evidence.records import run_record
from evidence.result_files import load_results, logged_tasks, results_file, samples_file
from fin_tasks.index import task_manager
from harness.lm_eval_adapters import score_on_validation
from leaderboard.verify import TamperedResults, rescore_compact_rows
from plumbing.atomic import write_atomic
from plumbing.folders import MANIFEST, is_finished
from plumbing.jsonl import jsonl_rows
from study.spec import Study
from study.tables import write_tables

ARCHIVE = "logs.tar.gz"
RECIPE = "study"  # the archive's copy of the study folder it was run under (study/<file>)
# An archive is data: what `pack` writes, under caps far above a real study's (Study A: 310
# members, 13 MB unpacked, the largest 0.2 MB).
MAX_MEMBER = 64 << 20
MAX_TOTAL = 512 << 20
MEMBER_NAMES = re.compile(r"(?:.+/(?:finharness\.json|results_[^/]+\.json|samples_[^/]+\.jsonl|train_log\.jsonl)"
                          r"|deviation/[^/]+\.json|claims\.lock\.json|" + RECIPE + r"/[^/]+\.ya?ml)")
# Fields of an lm-eval per-sample row the tables never read: prompts, hashes, raw responses.
DROPPED = {"arguments", "resps", "doc_hash", "prompt_hash", "target_hash", "filter", "metrics"}


def compact_row(row: dict) -> dict:
    """One per-sample row with what the tables read: the label set of the document, the
    per-label log-likelihoods (multiple choice), every per-document metric value, and a
    generation document's input and reference (its lead baseline)."""
    out = {k: v for k, v in row.items() if k not in DROPPED and k not in ("doc", "filtered_resps")}
    doc = row.get("doc") if isinstance(row.get("doc"), dict) else {}
    out["doc"] = {"choices": doc["choices"]} if doc.get("choices") is not None else {}
    if is_generation_row(row):  # the lead baseline answers with the input's first sentences
        out["doc"].update(input=doc["input"], output=doc["output"])
    if label_logliks(row) is not None:
        out["filtered_resps"] = row["filtered_resps"]
    return out


def _compact_log(path: Path) -> bytes:
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
    for design in sorted(Path(study.folder).glob("*.y*ml")):  # the recipe the run was made under
        members[f"{RECIPE}/{design.name}"] = design.read_bytes()
    if not any(n.endswith(".jsonl") and "/samples_" in f"/{n}" for n in members):
        raise ValueError(f"{root}: no finished evaluation to pack (run the study first)")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name in sorted(members):
            _add(tar, name, members[name])
    out = Path(out)
    write_atomic(out / ARCHIVE, buffer.getvalue())
    pictures = sorted(p.name for pattern in ("*.svg", "*.png") for p in root.glob(pattern))
    for table in ("tables.md", "tables.json", "claims.json", "run.json", *pictures):
        if (root / table).is_file():
            write_atomic(out / table, (root / table).read_bytes())
    return out / ARCHIVE


def _members(archive: Path) -> dict[str, bytes]:
    """The archive's members, read as data: plain files of the names ``pack`` writes, within
    the size caps; anything else is an error naming the archive and the member."""
    head = archive.read_bytes()[:64] if archive.is_file() else b""
    if head.startswith(b"version https://git-lfs"):
        raise ValueError(f"{archive}: a Git LFS pointer, not the archive (run `git lfs pull`)")
    found: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:
                name = member.name
                if not member.isfile() or name.startswith("/") or ".." in Path(name).parts:
                    raise ValueError(f"{archive}: member {name!r} is not a plain file inside the study")
                if not MEMBER_NAMES.fullmatch(name):
                    raise ValueError(f"{archive}: member {name!r} is not one `finharness study pack` writes")
                if name in found:  # a second copy would silently replace the first on extraction
                    raise ValueError(f"{archive}: member {name!r} appears twice")
                total += member.size
                if member.size > MAX_MEMBER or total > MAX_TOTAL:
                    raise ValueError(f"{archive}: member {name!r} ({member.size:,} bytes) takes the archive past its "
                                     f"caps ({MAX_MEMBER >> 20} MiB a member, {MAX_TOTAL >> 20} MiB in all)")
                found[name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise ValueError(f"{archive}: not a whole `finharness study pack` archive (a gzip-compressed tar); "
                         f"{type(err).__name__}: {err}") from None
    return found


def _check_recipe(archive: Path, found: dict[str, bytes], folder: Path) -> str | None:
    """The archive's copy of the study folder against ``folder``: a difference is refused,
    naming the file; an archive packed before it carried one gets a note (None: they match)."""
    carried = {name.split("/", 1)[1]: data for name, data in found.items() if name.startswith(f"{RECIPE}/")}
    if not carried:
        return (f"{archive} carries no copy of the study folder it was run under (packed before 2026-12-07): "
                f"its tables are rebuilt under {folder} as it is now")
    import hashlib

    here = {p.name: p.read_bytes() for p in sorted(folder.glob("*.y*ml"))}
    for name in sorted(set(carried) | set(here)):
        if carried.get(name) != here.get(name):
            said = (lambda b: "missing" if b is None else f"sha256 {hashlib.sha256(b).hexdigest()[:12]}")
            raise ValueError(f"{archive} was run under another {name} than {folder / name} (archive: "
                             f"{said(carried.get(name))}; folder: {said(here.get(name))}): its tables would not "
                             "be this recipe's; rebuild it with the study folder it carries")
    return None


def unpack(archive: Path, root: Path, folder: Path | None = None, needs_one_of: set[str] | None = None) -> str | None:
    """The archive's files under ``root`` (a study's output folder), checked as :func:`_members`
    reads them and, with ``folder``, against the study folder (:func:`_check_recipe`); returns
    a note for an archive that carries no recipe. ``needs_one_of``: member names of which the
    archive must hold one (a finished evaluation of the study), or nothing is written."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"{root} is not empty: unpack the study's logs into a fresh folder (--output_path)")
    found = _members(Path(archive))
    note = _check_recipe(Path(archive), found, Path(folder)) if folder is not None else None
    if needs_one_of is not None and not needs_one_of & set(found):
        raise ValueError(f"{archive} holds no finished evaluation of the study {folder} (an empty archive, or "
                         "another study's); nothing to tabulate")
    for name, data in found.items():
        if not name.startswith(f"{RECIPE}/"):
            write_atomic(root / name, data)
    return note


def tables_from(archive: Path, study: Study) -> tuple[Path, str | None]:
    """Unpack ``archive`` into ``study``'s (fresh) output folder and render its tables there;
    the tables' path and a note on the recipe check. An archive with no evaluation of this
    study is refused before any table is written."""
    root = Path(study.root)
    manifests = {f"{Path(step.folder).relative_to(root)}/{MANIFEST}" for step in study.evals}
    note = unpack(Path(archive), root, Path(study.folder), needs_one_of=manifests)
    try:
        rescore(root, study.eval.include_paths)
    except ValueError as err:
        raise ValueError(f"{archive}: member {err}") from None
    return write_tables(study), note


def rescore(root: Path, include_paths) -> None:
    """Every unpacked row whose responses were packed is rescored with its task's own
    ``process_results``, as the board verifies a submission, against the split the folder's
    results say it scored (a study's development rows: validation rows where a task has them):
    an archive whose metrics do not follow from its responses is refused, naming the member
    and the document."""
    folders = sorted({p.parent for p in Path(root).rglob("samples_*.jsonl")})
    names = sorted({t for folder in folders for t in logged_tasks(folder)})
    loaded: dict[str, tuple[dict, dict]] = {}  # split -> (tasks, their scored documents)

    def tasks_of(split: str) -> tuple[dict, dict]:
        if split not in loaded:
            manager = task_manager(include_paths)
            if split in ("validation", "development"):
                score_on_validation(manager, required=split == "validation")
            tasks = manager.load([t for t in names if t in manager.all_tasks])["tasks"]
            loaded[split] = tasks, {name: list(task.eval_docs) for name, task in tasks.items()}
        return loaded[split]

    for folder in folders:
        try:
            split = run_record(load_results(results_file(folder))).get("split") or "test"
        except (OSError, ValueError):
            split = "test"  # a folder without a readable results file is checked as a test slice
        tasks, docs = tasks_of(split if split in ("validation", "development") else "test")
        for name in logged_tasks(folder):
            if name not in tasks:
                continue
            path = samples_file(folder, name)
            rows = [row for _, row in jsonl_rows(path, TamperedResults)]
            try:
                rescore_compact_rows(name, tasks[name], rows, path.relative_to(root), docs[name])
            except (KeyError, TypeError) as err:
                raise TamperedResults(f"{path.relative_to(root)}: a row is not a packed sample row ({err})") from None
