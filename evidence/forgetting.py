"""What ``finharness forgetting`` reads: one entry against a reference, task by task, on the
same documents, with what a trivial answer scores and a paired interval.

A change of +0.26 in accuracy on FOMC means nothing when the entry answers the majority label
for every document; so each row carries, beside the score, the reference's and their change:

- the 95% paired bootstrap interval of the change (the two folders' per-document values on the
  same documents; folders scored on different documents are refused, as ``compare`` refuses
  them) and its paired permutation p-value;
- the best trivial answer's score on that metric and documents (``evidence/baselines.py``), and
  both scores normalized by it (0 = a trivial answer, unclipped);
- which of the two collapsed onto one label (far from the gold shares, MCC about 0).

Role rows average the change over the role's tasks (tasks, not documents, as arXiv 2411.02476
averages), with the interval of that average from the tasks' paired replicates.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evidence.baselines import best_baseline, normalize
from evidence.measures import ROLES, own_metrics, shown_metric
from evidence.records import run_record
from evidence.result_files import load_results, results_file, samples_file
from evidence.stats import align, paired_permutation_test, percentile_interval, read_samples, replicates, task_draws
from fin_tasks.common.metrics import aggregation_of


@dataclass(frozen=True)
class TaskChange:
    task: str
    role: str
    metric: str
    docs: int | None  # None: a results file without per-sample logs or counts
    score: float
    reference: float
    change: float
    low: float | None  # 95% paired bootstrap interval of the change (None without per-sample logs)
    high: float | None
    p: float | None  # paired permutation test of "no change"
    baseline: float | None  # the best trivial answer's score on this metric (classification tasks)
    normalized: float | None  # (score - baseline) / (1 - baseline), unclipped
    normalized_reference: float | None
    collapsed: str  # "entry: neutral" / "reference: up" / "" when neither collapsed

    def as_row(self) -> dict[str, Any]:
        """The row as tables show it; :data:`TASK_FORMATS` formats its columns."""
        return {"task": self.task, "role": self.role, "metric": self.metric, "docs": self.docs, "score": self.score,
                "reference": self.reference, "change": self.change, "95% CI": _interval(self.low, self.high),
                "p": self.p, "baseline": self.baseline, "normalized": self.normalized,
                "normalized ref": self.normalized_reference, "collapsed": self.collapsed}


TASK_FORMATS = ("", "", "", "", ".4f", ".4f", "+.4f", "", ".4f", ".4f", "+.4f", "+.4f", "")


@dataclass(frozen=True)
class RoleChange:
    role: str
    tasks: int
    score: float  # mean over the role's tasks
    reference: float
    change: float
    low: float | None  # None when a task has no per-sample logs
    high: float | None
    normalized_change: float | None  # mean normalized change over its classification tasks

    def as_row(self) -> dict[str, Any]:
        return {"role": self.role, "tasks": self.tasks, "score": self.score, "reference": self.reference,
                "change": self.change, "95% CI": _interval(self.low, self.high),
                "normalized change": self.normalized_change}


ROLE_FORMATS = ("", "", ".4f", ".4f", "+.4f", "", "+.4f")


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"[{low:+.4f}, {high:+.4f}]"


def _reported(data: Mapping[str, Any], task: str) -> list[str]:
    scores = data["results"].get(task) or {}
    ordered = own_metrics((data.get("configs") or {}).get(task))
    found = [k.partition(",")[0] for k in scores if k.endswith(",none") and "stderr" not in k]
    return [m for m in ordered if m in found] + [m for m in found if m not in ordered]


def _collapsed(data: Mapping[str, Any], task: str) -> str | None:
    return ((run_record(data).get("baselines") or {}).get(task) or {}).get("collapsed")


def _score(data: Mapping[str, Any], task: str, metric: str) -> float:
    value = data["results"][task].get(f"{metric},none")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{task}: no {metric} score in the results file")
    return float(value)


def _same_slice(data_e: Mapping[str, Any], data_r: Mapping[str, Any], task: str, entry: Path,
                reference: Path) -> int | None:
    """Without per-sample logs the documents cannot be matched one by one: the two runs must
    at least record the same slice and document count. Returns the count, if recorded."""
    def slice_of(data):
        record = run_record(data).get("slice") or {"limit": (data.get("config") or {}).get("limit")}
        return record, ((data.get("n-samples") or {}).get(task) or {}).get("effective")

    (slice_e, n_e), (slice_r, n_r) = slice_of(data_e), slice_of(data_r)
    if slice_e != slice_r or n_e != n_r:
        raise ValueError(f"{task}: {entry} ({n_e} documents, slice {slice_e}) and {reference} ({n_r} documents, "
                         f"slice {slice_r}) were not scored on the same documents; score both on the same slice")
    return n_e if isinstance(n_e, int) else None


def forgetting_report(entry: Path, reference: Path, metric: str, roles: Mapping[str, str],
                      resamples: int = 2000, seed: int = 0) -> tuple[list[TaskChange], list[RoleChange]]:
    """Per task both folders scored, and per role, the entry's change against the reference.

    ``metric`` must be one some scored task reports (a typo is an error, not a silent
    fallback); a task that does not report it is read on its own headline metric
    (:func:`evidence.measures.shown_metric`: ROUGE-L for a summary, a user task's first)."""
    data_e, data_r = load_results(results_file(entry)), load_results(results_file(reference))
    groups = set(data_e.get("groups", {})) | set(data_r.get("groups", {}))
    common = sorted((set(data_e["results"]) & set(data_r["results"])) - groups)
    if not common:
        raise ValueError(f"{entry} and {reference} share no scored task")
    everything = sorted({m for task in common for m in _reported(data_e, task)})
    if metric not in everything:
        raise ValueError(f"--metric {metric!r}: no task the two folders scored reports it "
                         f"(they report: {', '.join(everything)})")
    rows, reps_by_task = [], {}
    for task in common:
        name = shown_metric(metric, _reported(data_e, task))
        score, ref = _score(data_e, task, name), _score(data_r, task, name)
        low = high = p = None
        try:
            logs = samples_file(entry, task), samples_file(reference, task)
        except ValueError:  # a run without per-sample logs: its scores, no interval, and the slice checked
            logs = None
            docs = _same_slice(data_e, data_r, task, entry, reference)
        if logs is not None:
            try:
                a, b = align(read_samples(logs[0], name), read_samples(logs[1], name), (str(entry), str(reference)))
            except ValueError as err:
                raise ValueError(f"{task}: {err}; score both on the same slice (the same --limit, --sample and "
                                 "--seed) to compare them") from None
            aggregate = aggregation_of(name)
            draws = task_draws(task, len(a), resamples, seed)
            score, reps_a = replicates(a, aggregate, draws)
            ref, reps_b = replicates(b, aggregate, draws)
            reps_by_task[task] = reps_a - reps_b
            low, high = percentile_interval(reps_a - reps_b)
            p = paired_permutation_test(a, b, aggregate, seed=seed)
            docs = len(a)
        base_e = (run_record(data_e).get("baselines") or {}).get(task) or {}
        baseline = best_baseline(base_e.get("baselines") or {}, name)
        collapsed = [f"{who}: {label}" for who, label in (("entry", _collapsed(data_e, task)),
                                                          ("reference", _collapsed(data_r, task))) if label]
        rows.append(TaskChange(
            task=task, role=roles.get(task, ""), metric=name, docs=docs, score=score, reference=ref,
            change=score - ref, low=low, high=high, p=p, baseline=baseline,
            normalized=None if baseline is None else normalize(score, baseline),
            normalized_reference=None if baseline is None else normalize(ref, baseline),
            collapsed="; ".join(collapsed)))
    averages = []
    for role in ROLES:
        members = [r for r in rows if r.role == role]
        if not members:
            continue
        low = high = None
        if all(r.task in reps_by_task for r in members):
            low, high = percentile_interval(np.mean([reps_by_task[r.task] for r in members], axis=0))
        normalized = [r.normalized - r.normalized_reference for r in members if r.normalized is not None]
        averages.append(RoleChange(
            role, len(members), float(np.mean([r.score for r in members])),
            float(np.mean([r.reference for r in members])), float(np.mean([r.change for r in members])), low, high,
            float(np.mean(normalized)) if normalized else None))
    return rows, averages
