"""What a trivial answer scores on the same documents, and whether a model gave one.

A weighted F1 of 0.58 on FPB means nothing until one sees that answering ``neutral`` for
every document scores 0.58 too. For every classification task a run scored, computed from
the data alone (no model):

- **majority**: the scored slice's most frequent gold label, answered for every document;
- **train prior**: the training split's most frequent label, answered for every document
  (where the task has a training split);
- **uniform random**: a uniformly random label per document;
- **prior-matched random**: labels drawn in proportion to the training split's label
  shares (the scored slice's own shares where the task has no training split). Where labels
  are imbalanced it beats uniform guessing (weighted F1 on Headlines 0.451 against 0.357);

each with every metric the task reports (the random guesses: accuracy exactly, the F1s and
MCC as the mean over seeded draws). A model's **normalized** score is ``(score - b) / (1 - b)``,
``b`` the best of them on that metric. It is *not* clipped: inference (claims, intervals,
board ranks) needs the linear map, since the mean of clipped scores is biased upward near
the floor. Tables clip it at 0 for display only (:func:`for_display`) and say so.

A model is **collapsed** on a task when its predicted label distribution is far from the
gold one (total-variation distance at least 0.3, as when one label takes 90% of the answers
while gold gives it 60%) *and* its MCC shows no positive association (below 0.1): its score
says how common its labels are, not what it learned. A perfect classifier on an imbalanced slice
predicts the gold distribution, so it is never flagged.

The per-document values come from lm-eval's own sample logs: finharness's classification
metrics log each document as the pair ``(gold, predicted)``.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fin_tasks.common.metrics import aggregation_of, base_metric, confusion_matrices, from_confusion
from plumbing.vocabulary import Prior

PAIR_METRIC = "f1_macro"  # any of finharness's pair-valued metrics holds (gold, pred)
NORMALIZED = "f1_macro"  # the normalized score tables show and rank by: a constant answer cannot win it
RANDOM_DRAWS = 2000
CLASSIFICATION_METRICS = ("acc", "f1_macro", "f1_weighted", "mcc",
                          "acc_norm", "f1_macro_norm", "f1_weighted_norm", "mcc_norm")
FAR_FROM_GOLD = 0.3  # total-variation distance between predicted and gold label shares
MCC_ABOUT_ZERO = 0.1  # below it: no positive association with the gold labels
BASELINES = ("majority", "train prior", "uniform random", "prior-matched random")


@dataclass
class TaskBaselines:
    task: str
    labels: list[str]
    docs: int
    predicted: dict[str, int]  # predicted label -> documents (a missing answer is "(none)")
    collapsed: str | None  # the most predicted label, when the predictions are far from gold with MCC ~ 0
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> metric -> score
    normalized: dict[str, float] = field(default_factory=dict)  # metric -> normalized model score (unclipped)
    answers: dict[str, str] = field(default_factory=dict)  # constant baseline -> the label it answers
    gold: dict[str, int] = field(default_factory=dict)  # gold label -> documents
    distance: float = 0.0  # total-variation distance of the predicted from the gold label shares
    mcc: float = 0.0
    prior: Prior = "train"  # whose label shares prior-matched guessing draws from

    def as_json(self) -> dict[str, Any]:
        return {"labels": self.labels, "docs": self.docs, "predicted": self.predicted, "gold": self.gold,
                "distance": self.distance, "mcc": self.mcc, "collapsed": self.collapsed,
                "baselines": self.baselines, "normalized": self.normalized, "answers": self.answers,
                "prior": self.prior}


def _score(metric: str, pairs: Sequence[tuple[int, int]]) -> float:
    if base_metric(metric) == "acc":
        return float(np.mean([g == p for g, p in pairs]))
    return float(aggregation_of(metric)(pairs))


def constant_scores(golds: Sequence[int], answer: int, metrics: Sequence[str]) -> dict[str, float]:
    """One answer for every document: each rule's twin of a metric (``f1_macro_norm`` beside
    ``f1_macro``) scores the same pairs, so each metric's arithmetic runs once."""
    pairs = [(g, answer) for g in golds]
    by_base = {base: _score(base, pairs) for base in dict.fromkeys(base_metric(m) for m in metrics)}
    return {m: by_base[base_metric(m)] for m in metrics}


def guess_scores(golds: Sequence[int], shares: Sequence[float], metrics: Sequence[str], seed: int = 0,
                 draws: int = RANDOM_DRAWS) -> dict[str, float]:
    """Expected scores of guessing each document's label independently with probabilities
    ``shares``: accuracy exactly (sum of share x gold share), the F1s and MCC as the mean over
    ``draws`` seeded draws (every draw's confusion matrix scored at once)."""
    gold = np.asarray(golds)
    p = np.asarray(shares, dtype=float)
    p = p / p.sum()
    out: dict[str, float] = {}
    gold_shares = np.bincount(gold, minlength=len(p))[:len(p)] / len(gold)
    matrices = None
    for metric in metrics:
        base = base_metric(metric)
        if base == "acc":
            out[metric] = float(np.dot(p, gold_shares))
            continue
        if matrices is None:
            guesses = np.random.default_rng(seed).choice(len(p), size=(draws, len(gold)), p=p)
            matrices = confusion_matrices(gold, guesses)
        out[metric] = float(from_confusion(base, matrices).mean())
    return out


def random_scores(golds: Sequence[int], n_labels: int, metrics: Sequence[str], seed: int = 0) -> dict[str, float]:
    """Uniform random guessing over ``n_labels`` labels."""
    return guess_scores(golds, np.ones(n_labels), metrics, seed)


def label_shares(golds: Sequence[int], n_labels: int) -> np.ndarray:
    counts = np.bincount(np.asarray(golds, dtype=np.int64), minlength=n_labels)[:n_labels].astype(float)
    return counts / counts.sum()


def normalize(score: float, baseline: float) -> float:
    """``(score - b) / (1 - b)``: 0 is a trivial answer's score, 1 is perfect, below 0 is worse
    than the best trivial answer. Linear, so means and differences of it are unbiased."""
    if baseline >= 1:
        return 0.0
    return (score - baseline) / (1 - baseline)


def for_display(value: float | None) -> float | None:
    """A normalized score as tables show it: clipped at 0 ("no better than a trivial answer")."""
    return None if value is None else max(0.0, value)


def best_baseline(baselines: Mapping[str, Mapping[str, float]], metric: str) -> float | None:
    """The best trivial answer's score on ``metric`` (the normalization's ``b``)."""
    found = [scores[metric] for scores in baselines.values() if metric in scores]
    return max(found) if found else None


def collapse_check(golds: Sequence[int], preds: Sequence[int], n_labels: int) -> tuple[float, float, bool]:
    """(total-variation distance of predicted from gold label shares, MCC, collapsed?)."""
    from fin_tasks.common.metrics import mcc as mcc_of

    gold = label_shares(golds, n_labels)
    valid = [p if 0 <= p < n_labels else n_labels for p in preds]  # a missing answer is its own label
    predicted = np.bincount(np.asarray(valid, dtype=np.int64), minlength=n_labels + 1) / len(valid)
    distance = 0.5 * float(np.abs(np.append(gold, 0.0) - predicted).sum())
    correlation = float(mcc_of(list(zip(golds, preds))))
    return distance, correlation, distance >= FAR_FROM_GOLD and correlation < MCC_ABOUT_ZERO


def trivial_scores(golds: Sequence[int], n_labels: int, train_golds: Sequence[int] | None,
                   metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """Every trivial answer's scores on documents with these gold labels: name -> metric -> score."""
    out = {"majority": constant_scores(golds, Counter(golds).most_common(1)[0][0], metrics)}
    if train_golds:
        out["train prior"] = constant_scores(golds, Counter(train_golds).most_common(1)[0][0], metrics)
    out["uniform random"] = random_scores(golds, n_labels, metrics)
    out["prior-matched random"] = guess_scores(golds, label_shares(train_golds if train_golds else golds, n_labels),
                                               metrics)
    return out


def task_baselines(task: str, labels: Sequence[str], pairs: Sequence[tuple[int, int]],
                   train_golds: Sequence[int] | None, scores: Mapping[str, float],
                   metrics: Sequence[str] = CLASSIFICATION_METRICS) -> TaskBaselines:
    """Baselines, normalized scores and the collapse flag of one task from its (gold, pred) pairs."""
    metrics = [m for m in metrics if m in scores]
    golds = [int(g) for g, _ in pairs]
    preds = [int(p) for _, p in pairs]
    names = [labels[p] if 0 <= p < len(labels) else "(none)" for p in preds]
    predicted = dict(Counter(names).most_common())
    distance, correlation, far = collapse_check(golds, preds, len(labels)) if pairs else (0.0, 0.0, False)
    collapsed = next(iter(predicted)) if far else None
    baselines = trivial_scores(golds, len(labels), train_golds, metrics)
    answers = {"majority": labels[Counter(golds).most_common(1)[0][0]]}
    if train_golds:
        answers["train prior"] = labels[Counter(train_golds).most_common(1)[0][0]]
    normalized = {m: normalize(scores[m], best_baseline(baselines, m)) for m in metrics}
    gold = dict(Counter(labels[g] for g in golds).most_common())
    return TaskBaselines(task, list(labels), len(pairs), predicted, collapsed, baselines, normalized, answers,
                         gold, round(distance, 6), round(correlation, 6), "train" if train_golds else "slice")


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


def normalized_replicates(tasks: Mapping[str, tuple[Sequence[tuple[int, int]], float]],
                          resamples: int = INTERVAL_RESAMPLES, seed: int = 0) -> tuple[float, np.ndarray] | None:
    """The mean over tasks of normalized macro-F1 (unclipped) and its bootstrap replicates, from
    each task's (gold, pred) pairs and best trivial baseline ``b``: documents are redrawn within
    each task, seeded by the task's name, so two entries scored on the same documents are
    resampled together."""
    from evidence.stats import replicates, task_draws

    points, reps = [], []
    for task, (pairs, best) in sorted(tasks.items()):
        if not pairs:
            continue
        draws = task_draws(task, len(pairs), resamples, seed)
        point, raw = replicates([tuple(p) for p in pairs], aggregation_of(NORMALIZED), draws)
        points.append(normalize(point, best))
        reps.append((raw - best) / (1 - best) if best < 1 else np.zeros_like(raw))
    if not reps:
        return None
    return float(np.mean(points)), np.mean(reps, axis=0)


def normalized_interval(
    tasks: Mapping[str, tuple[Sequence[tuple[int, int]], float]],
    resamples: int = INTERVAL_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean over tasks of normalized macro-F1 (unclipped)."""
    from evidence.stats import percentile_interval

    found = normalized_replicates(tasks, resamples, seed)
    return percentile_interval(found[1], level) if found else None


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
