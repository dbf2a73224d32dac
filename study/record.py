"""Every run of a study on the record, so that a rerun on the same test documents cannot hide
the runs before it.

Rendering a study's tables writes ``run.json`` beside ``claims.json``: the study, when its
first evaluation started (its lock), the rules its verdicts were decided by, a digest of the
test documents it scored and of the evaluations it read, and each claim's verdict. ``finharness
study pack`` ships it with the logs in ``docs/results/<run>/``; that folder is the record. The
claims table then lists every other run of the same study found there, with its verdicts, and
says which scored the same documents and which shared this run's lock (a design that changed
under one lock). ``claims.lock.json`` numbers a new run after those already on the record.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from plumbing.atomic import write_atomic

RECORD = Path("docs") / "results"  # where `study pack` ships a run (relative to the working folder)
RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunRecord:
    """One run of a study, as its claims table decided it."""

    study: str
    full: bool
    recorded: str | None  # when its first evaluation started (the lock's date); None: no lock
    rules: str  # the rules its verdicts were decided by
    documents: str  # sha256 of the test documents it scored, per task
    evidence: str  # sha256 of its finished evaluations' manifests
    verdicts: dict[str, str] = field(default_factory=dict)  # claim id -> verdict
    readings: dict[str, str] = field(default_factory=dict)  # claim id -> reading under newer rules
    run: int | None = None  # its number in the lock (runs locked since 2026-12-07)
    finished: str | None = None  # when its last evaluation finished (orders runs that share a lock)
    where: str = ""  # the record folder it was read from ("" for the run being tabulated)


def documents_digest(documents: Mapping[str, Sequence[int]]) -> str:
    """The scored test documents: task names and their sorted document ids."""
    canonical = json.dumps({task: sorted(int(d) for d in ids) for task, ids in sorted(documents.items())})
    return hashlib.sha256(canonical.encode()).hexdigest()


def evidence_digest(manifests: Mapping[str, bytes]) -> str:
    """The finished evaluations: each folder (relative to the study's output) and its manifest's bytes."""
    digest = hashlib.sha256()
    for name in sorted(manifests):
        digest.update(name.encode() + b"\0" + manifests[name] + b"\0")
    return digest.hexdigest()


def write_run(root: str | Path, record: RunRecord) -> Path:
    path = Path(root) / RUN_FILE
    data = {k: v for k, v in asdict(record).items() if k != "where"}
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def read_run(path: Path) -> RunRecord:
    """A ``run.json``, read as data; an error naming the file and the field when it is not one."""
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise ValueError(f"{path}: not a run record (JSON): {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a run record (a JSON object)")
    for name, kind in (("study", str), ("rules", str), ("documents", str), ("evidence", str),
                       ("verdicts", dict), ("readings", dict)):
        if not isinstance(data.get(name), kind):
            raise ValueError(f"{path}: field {name!r} is missing or not a {kind.__name__}")
    for name in ("verdicts", "readings"):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data[name].items()):
            raise ValueError(f"{path}: field {name!r} maps claim ids to strings")
    run = data.get("run")
    if run is not None and (not isinstance(run, int) or isinstance(run, bool) or run < 1):
        raise ValueError(f"{path}: field 'run' is {run!r}, not a positive whole number")
    recorded = data.get("recorded")
    if recorded is not None and not isinstance(recorded, str):
        raise ValueError(f"{path}: field 'recorded' is {recorded!r}, not a date string")
    return RunRecord(study=data["study"], full=bool(data.get("full", False)), recorded=recorded,
                     rules=data["rules"], documents=data["documents"], evidence=data["evidence"],
                     verdicts=dict(data["verdicts"]), readings=dict(data["readings"]), run=run,
                     finished=data.get("finished") if isinstance(data.get("finished"), str) else None,
                     where=str(path.parent))


def runs_on_record(study: str, full: bool, record: Path = RECORD) -> list[RunRecord]:
    """Every run of ``study`` (at the same size) shipped under ``record``."""
    if not Path(record).is_dir():
        return []
    found = [read_run(path) for path in sorted(Path(record).glob(f"*/{RUN_FILE}"))]
    return [r for r in found if r.study == study and r.full == full]


def record_files(record: Path = RECORD) -> dict[str, bytes]:
    """The record's run files (for the tables' freshness key: a newly shipped run redoes them)."""
    if not Path(record).is_dir():
        return {}
    return {str(p): p.read_bytes() for p in sorted(Path(record).glob(f"*/{RUN_FILE}"))}


def others(this: RunRecord, record: Path = RECORD) -> list[RunRecord]:
    """The runs on record other than ``this`` (the same evaluations are the same run)."""
    return [r for r in runs_on_record(this.study, this.full, record) if r.evidence != this.evidence]


def record_section(this: RunRecord, earlier_and_later: Sequence[RunRecord], record: Path = RECORD) -> str:
    """The claims table's list of every run of the study on record, oldest first, this one marked."""
    if not earlier_and_later:
        return (f"Runs on record: this is the only run of {this.study} in {record}/ (a run is put on the record "
                f"by `finharness study pack`).")
    from tabulate import tabulate

    runs = sorted([this, *earlier_and_later], key=lambda r: (r.recorded or "", r.finished or "", r.where))
    claims = list(this.verdicts) + sorted({c for r in earlier_and_later for c in r.verdicts} - set(this.verdicts))
    rows = []
    for number, r in enumerate(runs, 1):
        where = "this run" if r is this else Path(r.where).name
        same_lock = r is not this and r.recorded is not None and r.recorded == this.recorded
        rows.append([f"{number}", where + (" (same lock)" if same_lock else ""), r.recorded or "no lock",
                     r.finished or "", r.rules, "same" if r.documents == this.documents else "other"]
                    + [_word(r, c) for c in claims])
    shared = [r for r in earlier_and_later if r.recorded is not None and r.recorded == this.recorded]
    notes = [f"Every run of {this.study} on record ({record}/), oldest first ('locked': its first evaluation "
             "started; 'last evaluation': its last finished): each run's verdicts as decided by "
             "the rules it ran under (a later rules' reading in brackets). 'documents': whether it scored the same "
             "test documents as this run. Every earlier run on the same documents counts against a new one: a "
             "claim read again on the same documents is read with those runs in view."]
    if shared:
        notes.append(f"**{len(shared)} other run(s) share this run's lock ({this.recorded}): the design changed "
                     "under one preregistration** (their evaluations differ from this run's).")
    return (" ".join(notes) + "\n\n"
            + tabulate(rows, headers=["#", "run", "locked", "last evaluation", "rules", "documents", *claims],
                       tablefmt="github", disable_numparse=True))


def _word(r: RunRecord, claim: str) -> str:
    verdict = r.verdicts.get(claim)
    if verdict is None:
        return "-"
    reading = r.readings.get(claim)
    return verdict + (f" [{reading}]" if reading and reading != verdict else "")


def next_run_number(study: str, full: bool, record: Path = RECORD) -> int:
    return len(runs_on_record(study, full, record)) + 1
