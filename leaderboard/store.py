"""The board's store: one SQLite file, safe for several submitters at once.

Each entry is one row, written in one transaction (``BEGIN IMMEDIATE``), so a reader sees
an entry whole or not at all, and a killed submitter leaves nothing behind. Duplicates
(same model, revision, precision, weight type, chat template and evaluation settings)
are refused by a UNIQUE constraint inside that transaction, so two submitters racing
with the same model cannot both land. WAL mode lets ``show`` and ``render`` read while
someone submits.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evidence.records import EntryMetadata, entry_metadata
from plumbing.checkpoints import finharness_home
from plumbing.vocabulary import WeightType

# What makes two entries the same: model, revision, precision, weight type, chat template
# and evaluation settings.
KEY = ("model", "revision", "precision", "weight_type", "chat_template", "settings")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS entries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    model        TEXT NOT NULL,
    revision     TEXT NOT NULL,
    precision    TEXT NOT NULL,
    weight_type  TEXT NOT NULL,
    chat_template INTEGER NOT NULL,
    settings     TEXT NOT NULL,   -- canonical JSON: tasks, num_fewshot, limit, sample, seed, rule, task_files
    model_type   TEXT NOT NULL,
    base_model   TEXT,
    recipe       TEXT,            -- path or URL as submitted
    recipe_text  TEXT,            -- the recipe itself, so the board stays readable
    submitted_at TEXT NOT NULL,
    results_path TEXT NOT NULL,
    scores       TEXT NOT NULL,   -- JSON: task -> metric -> score (verified)
    docs         TEXT NOT NULL,   -- JSON: task -> docs scored
    metadata     TEXT NOT NULL,   -- JSON: the submission as accepted, roles, external task hashes, baselines, ...
    UNIQUE ({", ".join(KEY)})
);
"""


class DuplicateEntry(ValueError):
    """The same model, revision and settings are already on the board."""


class TaskRedefined(ValueError):
    """A task from a user's folder submitted under a name the board pinned to other files."""


def pinned_tasks(entries: list[tuple[int, EntryMetadata]]) -> dict[str, tuple[int, dict[str, str]]]:
    """Per external task name: the first entry that scored it and the files it was scored on.
    The first accepted definition pins the name: whoever came later with other files (other gold
    labels) would otherwise share its column and its unseen average."""
    pins: dict[str, tuple[int, dict[str, str]]] = {}
    for entry_id, metadata in sorted(entries, key=lambda e: e[0]):
        for task, fingerprint in (metadata.get("external_tasks") or {}).items():
            pins.setdefault(task, (entry_id, dict(fingerprint.get("files") or {})))
    return pins


def check_pins(pins: dict[str, tuple[int, dict[str, str]]], external: dict[str, dict], where: str) -> None:
    """:class:`TaskRedefined` naming the task and the files that differ from its pinned definition."""
    for task, fingerprint in sorted((external or {}).items()):
        if task not in pins:
            continue
        entry_id, pinned = pins[task]
        files = fingerprint.get("files") or {}
        differ = sorted(name for name in set(pinned) | set(files) if pinned.get(name) != files.get(name))
        if differ:
            described = ", ".join(f"{name} ({_state(pinned.get(name), files.get(name))})" for name in differ)
            raise TaskRedefined(
                f"task {task}: {where} pinned its definition at entry {entry_id}, and this submission's files differ: "
                f"{described}; submit the same files, or rename the task")


def _state(pinned: str | None, given: str | None) -> str:
    if pinned is None:
        return "not in the pinned definition"
    if given is None:
        return "missing here"
    return f"sha256 {given[:12]}, pinned {pinned[:12]}"


def default_board() -> Path:
    return Path(os.environ.get("FINHARNESS_BOARD", finharness_home() / "leaderboard" / "board.sqlite"))


@dataclass
class Entry:
    id: int
    model: str
    revision: str
    precision: str
    weight_type: WeightType
    chat_template: bool
    settings: dict[str, Any]
    model_type: str
    base_model: str | None
    recipe: str | None
    recipe_text: str | None
    submitted_at: str
    results_path: str
    scores: dict[str, dict[str, float]]
    docs: dict[str, int]
    metadata: EntryMetadata  # the submission as accepted and what verification found


def settings_key(tasks: list[str], num_fewshot: int | None, limit: float | None,
                 external: dict[str, dict] | None = None, sample: str = "first", seed: int | None = None,
                 rule: str = "prior") -> str:
    """What makes two scorings of one model comparable (and so a duplicate). A task from a
    user's folder counts by the content of its files, not its name alone."""
    if limit is not None and float(limit).is_integer():
        limit = int(limit)  # lm-eval writes --limit 5 as 5.0
    key: dict[str, Any] = {"tasks": sorted(tasks), "num_fewshot": num_fewshot or 0, "limit": limit}
    if limit is not None and sample != "first":
        key |= {"sample": sample, "seed": seed}  # another slice of the same size is other documents
        if sample == "stratified" and rule != "prior":
            key["rule"] = rule  # the old rule (one document per label at least) drew other documents
    if external:
        files = json.dumps({t: f["files"] for t, f in external.items()}, sort_keys=True)
        key["task_files"] = hashlib.sha256(files.encode()).hexdigest()[:16]
    return json.dumps(key, sort_keys=True)


class BoardBusy(ValueError):
    """Another writer held the board for longer than this one waits."""


class Board:
    def __init__(self, path: Path | None = None, timeout: float = 60):
        self.path = Path(path or default_board())
        self.timeout = timeout  # seconds a writer waits for another writer's transaction

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self.path.is_dir():
            raise ValueError(f"{self.path}: a folder, not a board file (give --board path/to/board.sqlite)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as err:
            raise ValueError(f"{self.path}: cannot open the board ({err})") from None
        conn.row_factory = sqlite3.Row
        try:
            self._prepare(conn)
            yield conn
        except sqlite3.DatabaseError as err:
            if isinstance(err, sqlite3.OperationalError) and ("locked" in str(err) or "busy" in str(err)):
                raise BoardBusy(f"{self.path}: another writer held the board for over {self.timeout:g} s ({err}); "
                                "nothing was written, try again") from None
            if "disk is full" in str(err) or "disk I/O error" in str(err):
                raise OSError(errno.ENOSPC, f"{self.path}: the disk is full ({err}); the board keeps its last "
                                            "finished write, nothing of this one") from None
            raise ValueError(f"{self.path}: not a finharness board ({err})") from None
        finally:
            conn.close()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """WAL mode and the schema. Switching to WAL can answer "locked" at once, without
        waiting, while other submitters open the same new file, so retry for a while."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(SCHEMA)
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def results_dir(self, model: str, revision: str, settings: str) -> Path:
        """Where the board keeps an entry's verified results: ``results/`` beside the database,
        one folder per model, revision and settings (a content digest of them)."""
        digest = hashlib.sha256(settings.encode()).hexdigest()[:8]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"
        return self.path.parent / "results" / f"{slug}-{revision[:16]}-{digest}"

    def find(self, fields: dict[str, Any]) -> Entry | None:
        """The entry with the same :data:`KEY` values as ``fields``, if any."""
        with self._connect() as conn:
            return self._find(conn, fields)

    def _find(self, conn: sqlite3.Connection, fields: dict[str, Any]) -> Entry | None:
        where = " AND ".join(f"{k}=?" for k in KEY)
        values = [int(fields[k]) if k == "chat_template" else fields[k] for k in KEY]
        row = conn.execute(f"SELECT * FROM entries WHERE {where}", values).fetchone()
        return self._entry(row) if row else None

    def check_new(self, fields: dict[str, Any]) -> None:
        """:class:`DuplicateEntry` if ``fields`` is on the board already, or a task-pin conflict:
        a check before costly work (one connection); :meth:`add` checks again inside its
        transaction, for racing submitters."""
        with self._connect() as conn:
            existing = self._find(conn, fields)
            if existing is not None:
                raise self._duplicate(fields, existing.id)
            self._check_pins(conn, fields)

    def _check_pins(self, conn: sqlite3.Connection, fields: dict[str, Any]) -> None:
        external = (fields.get("metadata") or {}).get("external_tasks")
        if not external:
            return
        rows = conn.execute("SELECT id, metadata FROM entries ORDER BY id").fetchall()
        check_pins(pinned_tasks([(r["id"], entry_metadata(json.loads(r["metadata"]))) for r in rows]), external,
                   str(self.path))

    def _duplicate(self, fields: dict[str, Any], entry_id: int | None = None) -> DuplicateEntry:
        which = f"entry {entry_id}" if entry_id is not None else "an entry"
        return DuplicateEntry(
            f"{fields['model']}: {which} on {self.path} already holds this model (revision {fields['revision'][:12]}, "
            f"{fields['precision']}, {fields['weight_type']}, "
            f"chat template {'on' if fields['chat_template'] else 'off'}) "
            f"with these settings {fields['settings']}"
        )

    def add(self, fields: dict[str, Any]) -> int:
        """Insert one entry atomically; :class:`DuplicateEntry` if it is already there."""
        row = {
            **fields,
            "chat_template": int(fields["chat_template"]),
            "submitted_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **{k: json.dumps(fields[k], sort_keys=True) for k in ("scores", "docs", "metadata")},
        }
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._check_pins(conn, fields)  # again inside the transaction: racing submitters
            except TaskRedefined:
                conn.execute("ROLLBACK")
                raise
            try:
                cursor = conn.execute(f"INSERT INTO entries ({columns}) VALUES ({marks})", list(row.values()))
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK")
                raise self._duplicate(fields) from None
            conn.execute("COMMIT")
            return int(cursor.lastrowid)

    def entries(self) -> list[Entry]:
        if not self.path.exists():
            return []
        with self._connect() as conn:
            return [self._entry(r) for r in conn.execute("SELECT * FROM entries ORDER BY id").fetchall()]

    @staticmethod
    def _entry(row: sqlite3.Row) -> Entry:
        values = dict(row)
        for key in ("settings", "scores", "docs", "metadata"):
            values[key] = json.loads(values[key])
        values["chat_template"] = bool(values["chat_template"])
        values["metadata"] = entry_metadata(values["metadata"])
        return Entry(**values)
