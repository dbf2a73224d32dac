"""What a trivial answer scores on the same documents, and whether a model gave one.

A weighted F1 of 0.58 on FPB means nothing until one sees that answering ``neutral`` for
every document scores 0.58 too. For every classification task a run scored, computed from
the data alone (no model):

- **majority**: the scored slice's most frequent gold label, answered for every document;
- **train prior**: the training split's most frequent label, answered for every document
  (where the task has a training split);
- **random**: a uniformly random label per document (the mean over seeded draws);

each with every metric the task reports. A model's **normalized** score is
``(score - b) / (1 - b)`` clipped at 0, ``b`` the best trivial baseline on that metric
(as the Open LLM Leaderboard normalizes to its random baseline). A model whose
predictions put one label on at least 90% of the documents is **collapsed**: its score
says how common that label is, not what the model learned.

The per-document values come from lm-eval's own sample logs: finharness's classification
metrics log each document as the pair ``(gold, predicted)``.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fin_tasks.common.metrics import aggregation_of, confusion_matrices, from_confusion

PAIR_METRIC = "f1_macro"  # any of finharness's pair-valued metrics holds (gold, pred)
NORMALIZED = "f1_macro"  # the normalized score tables show and rank by: a constant answer cannot win it
COLLAPSE_SHARE = 0.9
RANDOM_DRAWS = 200
CLASSIFICATION_METRICS = ("acc", "f1_macro", "f1_weighted", "mcc")


@dataclass
class TaskBaselines:
    task: str
    labels: list[str]
    docs: int
    predicted: dict[str, int]  # predicted label -> documents (a missing answer is "(none)")
    collapsed: str | None  # the label that took >= 90% of the predictions
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> metric -> score
    normalized: dict[str, float] = field(default_factory=dict)  # metric -> normalized model score
    answers: dict[str, str] = field(default_factory=dict)  # constant baseline -> the label it answers

    def as_json(self) -> dict[str, Any]:
        return {"labels": self.labels, "docs": self.docs, "predicted": self.predicted,
                "collapsed": self.collapsed, "baselines": self.baselines, "normalized": self.normalized,
                "answers": self.answers}


def _score(metric: str, pairs: Sequence[tuple[int, int]]) -> float:
    if metric == "acc":
        return float(np.mean([g == p for g, p in pairs]))
    return float(aggregation_of(metric)(pairs))


def constant_scores(golds: Sequence[int], answer: int, metrics: Sequence[str]) -> dict[str, float]:
    pairs = [(g, answer) for g in golds]
    return {m: _score(m, pairs) for m in metrics}


def random_scores(golds: Sequence[int], n_labels: int, metrics: Sequence[str], seed: int = 0) -> dict[str, float]:
    """Mean score of uniformly random labels over seeded draws (all draws' confusion matrices
    scored at once, so a run pays milliseconds for it)."""
    gold = np.asarray(golds)
    draws = np.random.default_rng(seed).integers(0, n_labels, (RANDOM_DRAWS, len(gold)))
    out = {}
    if "acc" in metrics:
        out["acc"] = float((draws == gold).mean())
    matrices = confusion_matrices(gold, draws)
    for metric in ("f1_macro", "f1_weighted", "mcc"):
        if metric in metrics:
            out[metric] = float(from_confusion(metric, matrices).mean())
    return out


def normalize(score: float, baseline: float) -> float:
    """``(score - b) / (1 - b)``, clipped at 0: 0 is no better than a trivial answer, 1 is perfect."""
    if baseline >= 1:
        return 0.0
    return max(0.0, (score - baseline) / (1 - baseline))


def task_baselines(task: str, labels: Sequence[str], pairs: Sequence[tuple[int, int]],
                   train_golds: Sequence[int] | None, scores: Mapping[str, float],
                   metrics: Sequence[str] = CLASSIFICATION_METRICS) -> TaskBaselines:
    """Baselines, normalized scores and the collapse flag of one task from its (gold, pred) pairs."""
    metrics = [m for m in metrics if m in scores]
    golds = [int(g) for g, _ in pairs]
    preds = [int(p) for _, p in pairs]
    names = [labels[p] if 0 <= p < len(labels) else "(none)" for p in preds]
    predicted = dict(Counter(names).most_common())
    top, top_count = next(iter(predicted.items())) if predicted else (None, 0)
    collapsed = top if pairs and top_count >= COLLAPSE_SHARE * len(pairs) else None
    majority = Counter(golds).most_common(1)[0][0]
    baselines = {"majority": constant_scores(golds, majority, metrics)}
    answers = {"majority": labels[majority]}
    if train_golds:
        prior = Counter(train_golds).most_common(1)[0][0]
        baselines["train prior"] = constant_scores(golds, prior, metrics)
        answers["train prior"] = labels[prior]
    baselines["random"] = random_scores(golds, len(labels), metrics)
    normalized = {m: normalize(scores[m], max(b[m] for b in baselines.values())) for m in metrics}
    return TaskBaselines(task, list(labels), len(pairs), predicted, collapsed, baselines, normalized, answers)


def from_rows(task: str, rows: Sequence[Mapping[str, Any]], scores: Mapping[str, float],
              manager) -> TaskBaselines | None:
    """One task's baselines from lm-eval per-sample rows; None for a task that is not a
    finharness-style classification (summaries, a user's own metrics)."""
    doc = rows[0].get("doc", {}) if rows else {}
    if not rows or PAIR_METRIC not in rows[0] or not isinstance(doc.get("choices"), list) or "gold" not in doc:
        return None
    pairs = [tuple(int(v) for v in row[PAIR_METRIC]) for row in rows]
    return task_baselines(task, [str(c) for c in doc["choices"]], pairs, train_golds(task, manager), scores)


def run_baselines(results: Mapping[str, Any], samples: Mapping[str, list[dict]], manager) -> dict[str, TaskBaselines]:
    """Every classification task of an lm-eval run: its baselines and its model's collapse flag."""
    out: dict[str, TaskBaselines] = {}
    for task, rows in samples.items():
        scores = {k.partition(",")[0]: v for k, v in results["results"].get(task, {}).items()
                  if k.endswith(",none") and isinstance(v, (int, float))}
        found = from_rows(task, rows, scores, manager)
        if found is not None:
            out[task] = found
    return out


INTERVAL_RESAMPLES = 1000


def normalized_interval(tasks: Mapping[str, tuple[Sequence[tuple[int, int]], float]], resamples: int = INTERVAL_RESAMPLES,
                        level: float = 0.95, seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean over tasks of normalized macro-F1, from each
    task's (gold, pred) pairs and best trivial baseline ``b``: documents are redrawn within
    each task (seeded by the task's name, so an entry's interval is reproducible)."""
    from harness.stats import percentile_interval, replicates, task_draws

    reps = []
    for task, (pairs, best) in sorted(tasks.items()):
        if not pairs:
            continue
        draws = task_draws(task, len(pairs), resamples, seed)
        _, raw = replicates([tuple(p) for p in pairs], aggregation_of(NORMALIZED), draws)
        reps.append(np.array([normalize(r, best) for r in raw]))
    return percentile_interval(np.mean(reps, axis=0), level) if reps else None


_TRAIN_GOLDS: dict[tuple[str, str], list[int] | None] = {}


def train_golds(task: str, manager) -> list[int] | None:
    """The training split's gold labels, where the task has one (from the task's own data;
    kept per task file for the life of the process)."""
    entry = manager.task_index.get(task)
    key = (task, str(getattr(entry, "yaml_path", "")))
    if key not in _TRAIN_GOLDS:
        try:
            loaded = manager.load([task])["tasks"][task]
            _TRAIN_GOLDS[key] = ([int(doc["gold"]) for doc in loaded.training_docs()]
                                 if loaded.has_training_docs() else None)
        except (KeyError, ValueError, TypeError):
            _TRAIN_GOLDS[key] = None
    return _TRAIN_GOLDS[key]
