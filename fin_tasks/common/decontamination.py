"""What text of a document a model could have seen, and which few-shot rows repeat a test row.

Every packaged task's YAML sets lm-eval's ``should_decontaminate: true`` and
``doc_to_decontamination_query`` to its document text: ``{{text}}`` for the financial
tasks, the paper's ``input`` (or ``input_1`` and ``input_2``) for the generalization suite.
:func:`query_text` is the same text read straight from a row, for code that scans packaged
JSONL without loading lm-eval tasks (the whole-suite overlap table, the leak-free training
sampler); a test checks the two agree on every packaged task.

The loaders mark each row of a few-shot pool (``validation`` for the financial tasks,
``fewshot`` for the generalization suite) with ``overlaps_test``: its text, or one of its
word 8-grams, is in the same task's test split. :mod:`fin_tasks.common.fewshot`'s samplers
never draw a marked row, so a few-shot prompt never shows the document it asks about, or a
duplicate of it, whatever split lm-eval is told to take examples from.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import plumbing.fingerprints
from plumbing.derived import content_key, remembered_arrays, source_of
from plumbing.fingerprints import DEFAULT_N, Fingerprint
from plumbing.jsonl import jsonl_rows

QUERY_FIELDS = (("text",), ("input_1", "input_2"), ("input",))  # the first group a row has
POOL_SPLITS = ("validation", "fewshot")
POOL_MARK = "overlaps_test"
TASKS_ROOT = Path(__file__).resolve().parents[1] / "tasks"


def query_text(doc: Mapping[str, Any]) -> str:
    """The document text a decontamination check compares (as the YAML's query renders it)."""
    for group in QUERY_FIELDS:
        if all(f in doc and doc[f] is not None for f in group):
            return "\n".join(str(doc[f]) for f in group)
    raise KeyError(f"a row needs one of the text fields {[list(g) for g in QUERY_FIELDS]}; it has {sorted(doc)}")


# The code a derived fingerprint or flag depends on: part of every key plumbing/derived.py keeps.
_CODE = source_of(plumbing.fingerprints.__file__, __file__)


def texts_key(texts: tuple[str, ...], *more: str) -> str:
    """The on-disk key of a value derived from ``texts`` (and ``more``) by this module's code."""
    return content_key([*_CODE, *more, str(len(texts)), *texts])


def overlap_flags(fingerprint: Fingerprint, texts: tuple[str, ...]) -> tuple[bool, ...]:
    """For each text: does it overlap ``fingerprint`` (its normalized text or a word 8-gram)?
    Kept on disk where the fingerprint's content is known."""
    if fingerprint.key is None:
        return tuple(bool(f) for f in fingerprint.overlaps(texts, DEFAULT_N))
    key = content_key([fingerprint.key, texts_key(texts, f"overlaps n={DEFAULT_N}")])
    flags = remembered_arrays("overlaps", key, lambda: {"flags": fingerprint.overlaps(texts, DEFAULT_N)})["flags"]
    return tuple(bool(f) for f in flags)


@lru_cache(maxsize=256)
def _pool_flags(test: tuple[str, ...], pool: tuple[str, ...]) -> tuple[bool, ...]:
    return overlap_flags(fingerprint_of(test), pool)


def mark_pool(splits: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Mark the few-shot pool rows that repeat a test row (in place; returns ``splits``)."""
    pools = [s for s in POOL_SPLITS if s in splits]
    if not pools or "test" not in splits:
        return splits
    try:
        test = tuple(query_text(r) for r in splits["test"])
        for split in pools:
            flags = _pool_flags(test, tuple(query_text(r) for r in splits[split]))
            for row, flag in zip(splits[split], flags):
                row[POOL_MARK] = bool(flag)
    except KeyError:  # a user's rows without a text field: nothing to compare, nothing marked
        for split in pools:
            for row in splits[split]:
                row.setdefault(POOL_MARK, False)
    return splits


def task_text(task, doc: Mapping[str, Any]) -> str:
    """A loaded lm-eval task's document text: its decontamination query where the task sets one."""
    if task.should_decontaminate():
        return str(task.doc_to_decontamination_query(doc))
    return query_text(doc)


def split_texts(task, split: str) -> list[str]:
    """The document texts of one split of a loaded task (a column read where the query is a field)."""
    return docs_texts(task, task.dataset[split])


_TEXTS: dict[tuple, list[str]] = {}


def docs_texts(task, docs) -> list[str]:
    """The texts of a task's documents (a ``datasets.Dataset`` is read by column where it can be).

    Rendering a templated query row by row is slow (seconds for a training split), and a board
    submission, a study or a training run asks for the same documents again and again, so a
    process keeps a Dataset's texts by its content (``datasets``' fingerprint) and the task's query.
    """
    content = getattr(docs, "_fingerprint", None)
    if content is None:
        return _render_texts(task, docs)
    key = (task.config.task, content, repr(task.config.doc_to_decontamination_query), task.should_decontaminate())
    if key not in _TEXTS:
        _TEXTS[key] = _render_texts(task, docs)
    return list(_TEXTS[key])


def _render_texts(task, docs) -> list[str]:
    query = task.config.doc_to_decontamination_query if task.should_decontaminate() else None
    if isinstance(query, str) and query in getattr(docs, "column_names", ()):
        return [str(x) for x in docs[query][:]]  # one column read, not row by row
    return [task_text(task, d) for d in docs]


@lru_cache(maxsize=256)
def fingerprint_of(texts: tuple[str, ...], n: int = DEFAULT_N) -> Fingerprint:
    """A cached fingerprint (n-grams of one length) of a set of texts (kept on disk too)."""
    key = texts_key(texts, f"fingerprint n={n}")
    arrays = remembered_arrays("fingerprint", key, lambda: Fingerprint.of(texts, ns=(n,)).arrays())
    return Fingerprint.from_arrays(arrays, key)


def task_test_fingerprint(task) -> Fingerprint:
    """The fingerprint of a loaded task's test split (empty when it has none)."""
    split = task.config.test_split
    if not split or split not in (getattr(task, "dataset", None) or {}):
        return Fingerprint.of([], ns=(DEFAULT_N,))
    return fingerprint_of(tuple(split_texts(task, split)))


def packaged_data_dirs() -> list[Path]:
    """Every packaged data folder (one per dataset, however many task variants read it)."""
    return sorted(p.parent for p in TASKS_ROOT.rglob("test.jsonl"))


def read_texts(path: Path) -> list[str]:
    """The document texts of a packaged JSONL split."""
    return [query_text(row) for _, row in jsonl_rows(path)]


@lru_cache(maxsize=4)
def _suite_fingerprint(stamp: tuple) -> Fingerprint:
    files = [folder / "test.jsonl" for folder in packaged_data_dirs()]
    # Keyed by the files' bytes (one read of a few MB), so reading it back needs no parse.
    key = content_key([*_CODE, "suite test fingerprint", *(f.read_bytes() for f in files)])
    arrays = remembered_arrays("fingerprint", key, lambda: Fingerprint.of(
        [t for f in files for t in read_texts(f)], ns=(DEFAULT_N,)).arrays())
    return Fingerprint.from_arrays(arrays, key)


def suite_test_fingerprint() -> Fingerprint:
    """Every packaged task's test documents, fingerprinted (kept in the process while the files
    are unchanged, and on disk by their content)."""
    stamp = tuple((str(p), (p / "test.jsonl").stat().st_mtime_ns) for p in packaged_data_dirs())
    return _suite_fingerprint(stamp)
