"""What a study's stored evaluations say, per result folder and task, each read once: the
per-document values of a metric, the label set, the training split's labels, the
contamination record, the dataset's own duplicates and the per-sample rows.

The store only reads; the study's documents, their bootstrap draws and every score made from
them are ``study.cells.Bootstrap``'s. A test double replaces the three reads (``read``,
``labels``, ``train_golds``): tests/helpers/simulation.py serves arrays through them.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from evidence.baselines import PAIR_METRIC, train_golds
from evidence.calibration import calibrated_values
from evidence.contamination import flag, read_sample_rows, task_sources
from evidence.records import ContaminationRecord, run_record
from evidence.result_files import load_results, logged_tasks, results_file, sample_rows, samples_file
from evidence.stats import read_samples
from fin_tasks.common.decontamination import task_text
from fin_tasks.common.metrics import BATCH_CALIBRATED
from fin_tasks.index import finben_name


@lru_cache(maxsize=4096)
def logged_task_names(folder: Path) -> tuple[str, ...]:
    """Tasks with a per-sample log in a finished (never again written) results folder."""
    return tuple(logged_tasks(folder))


def scored_name(folder: Path, task: str) -> str:
    """The task a folder logged for a FinBen name: itself, or its one prompt-format or
    generated variant (a study in arXiv 2411.02476's formats scores ``label_fin_fpb`` for
    ``fin_fpb``), so rows in different formats line up on one task."""
    logged = logged_task_names(folder)
    if task in logged:
        return task
    variants = sorted({t for t in logged if finben_name(t) == task})
    if len(variants) > 1:
        raise ValueError(f"{folder}: {task} was scored in several variants ({', '.join(variants)}); "
                         "a study row takes one")
    return variants[0] if variants else task


class LogStore:
    """One study's reads of its result folders, cached (see the module's docstring)."""

    def __init__(self, include_paths: Sequence[str | Path] = ()):
        self.include_paths = [Path(p) for p in include_paths]
        self._contamination: dict[Path, dict[str, ContaminationRecord]] = {}
        self._duplicates: dict[tuple, list[int] | None] = {}
        self._manager = None

    # -- the three reads a test double replaces -----------------------------------------------
    def read(self, folder: Path, task: str, metric: str, exclude: Collection[int] = ()) -> dict[int, Any]:
        """``doc_id -> value`` of ``metric`` from the folder's per-sample log of the task (a
        batch-calibrated metric computed from its per-label log-likelihoods on the documents not
        in ``exclude``, the ones a claim reads: evidence/calibration.py)."""
        path = samples_file(folder, scored_name(folder, task))
        if metric.endswith(BATCH_CALIBRATED):
            rows = read_sample_rows(path)
            if exclude:
                rows = [r for r in rows if int(r["doc_id"]) not in exclude]
            return calibrated_values(rows, metric)
        return read_samples(path, metric)

    def labels(self, folder: Path, task: str) -> list[str] | None:
        """The task's label set, from the first logged document (None for a task without one)."""
        path = samples_file(folder, scored_name(folder, task))
        first = next((row for _, row in sample_rows(path)), {})
        choices = (first.get("doc") or {}).get("choices")
        return [str(c) for c in choices] if isinstance(choices, list) else None

    def train_golds(self, folder: Path, task: str) -> list[int] | None:
        """The task's training-split gold labels (its prior), where the task has a training split."""
        manager = self.manager()
        name = scored_name(folder, task)
        return train_golds(name, manager) if name in manager.task_index else None

    # -- the rest ------------------------------------------------------------------------------
    def manager(self):
        """The study's task index (built once)."""
        if self._manager is None:
            from fin_tasks.index import task_manager

            self._manager = task_manager(self.include_paths)
        return self._manager

    def rows(self, folder: Path, task: str) -> list[dict]:
        """The folder's per-sample rows of the task."""
        return read_sample_rows(samples_file(folder, scored_name(folder, task)))

    def contamination(self, folder: Path, task: str) -> ContaminationRecord | None:
        """The folder's evaluation's contamination record of the task (its results file read once
        per folder); None when it recorded none (lineage unknown)."""
        if folder not in self._contamination:
            try:
                record = run_record(load_results(results_file(folder)))
            except ValueError:
                record = {}
            self._contamination[folder] = record.get("contamination") or {}
        return self._contamination[folder].get(scored_name(folder, task))

    def contaminated(self, folder: Path, task: str) -> list[int] | None:
        """Doc ids of the task that the folder's evaluation flagged as possibly seen (its lineage,
        the few-shot pool, the task's other splits); None when it recorded none (lineage unknown)."""
        found = self.contamination(folder, task)
        return None if found is None else [int(d) for d in found.get("contaminated", [])]

    def flagged(self, folder: Path, task: str, source: str) -> list[int] | None:
        """Doc ids of the task the folder's evaluation flagged from one source ("lineage", "few-shot
        pool", "other splits"); None when it recorded none."""
        found = self.contamination(folder, task)
        if found is None or source not in (found.get("flagged") or {}):
            return None
        return [int(d) for d in found["flagged"][source]]

    def dataset_duplicates(self, folder: Path, task: str, docs: Sequence[int] | None = None) -> list[int] | None:
        """Doc ids among ``docs`` (default: every logged one) whose text (or a word 8-gram of it)
        is in the task's own few-shot pool or other splits: the dataset's duplicates, the same for
        every model (computed from the task's data, not from a run's record); None where unknown."""
        key = (task, tuple(docs or ()))
        if key not in self._duplicates:
            found = None
            name = scored_name(folder, task)
            try:
                loaded = self.manager().load([name])["tasks"][name]
                docs = list(docs) if docs else sorted(self.read(folder, task, PAIR_METRIC))
                eval_docs = loaded.eval_docs
                texts = [task_text(loaded, eval_docs[d]) for d in docs]
                flags = flag(texts, task_sources(loaded))
                found = [d for i, d in enumerate(docs) if any(bool(f[i]) for f in flags.values())]
            except (ValueError, KeyError, IndexError):
                found = None
            self._duplicates[key] = found
        return self._duplicates[key]
