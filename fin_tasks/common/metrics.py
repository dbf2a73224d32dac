"""Per-document scoring and corpus-level aggregations for classification tasks.

lm-eval's built-in ``f1`` is binary-only and its ``mcc``/``f1`` aggregations get a
100,000-draw bootstrap for their error bars (minutes on 2 cores for 10 docs). Custom
aggregations are plain callables, so lm-eval reports their stderr as ``N/A``; paired
bootstrap intervals are computed later from the per-sample logs.

Every per-document value of ``f1_macro``, ``f1_weighted`` and ``mcc`` is the pair
``(gold_index, predicted_index)``; an unparseable generation is predicted as ``-1``,
which is never a gold label, so it counts as wrong for every metric. F1 is computed over
the labels present in gold (FinBen's convention), so a ``--limit`` slice that misses a
rare class is not charged a zero F1 for a class it never contained.

Multiple-choice tasks predict by two rules, each with its own metrics: the label with the
highest summed log-likelihood (``acc``, ``f1_macro``, ...), and lm-eval's ``acc_norm`` rule,
the highest log-likelihood per character of the label (``acc_norm``, ``f1_macro_norm``,
...), which does not favour short labels (FinRED's ``manufacturer`` is 2 tokens,
``product/material produced`` 4).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fin_tasks.common.parsing import parse_label

Pair = Sequence[int]


def _split(items: Sequence[Pair]) -> tuple[list[int], list[int]]:
    golds = [int(g) for g, _ in items]
    preds = [int(p) for _, p in items]
    return golds, preds


def f1_macro(items: Sequence[Pair]) -> float:
    """Unweighted mean of per-class F1 over the gold classes."""
    return _one_score("f1_macro", items)


def f1_weighted(items: Sequence[Pair]) -> float:
    """Per-class F1 weighted by gold support (FinBen's headline "F1")."""
    return _one_score("f1_weighted", items)


def mcc(items: Sequence[Pair]) -> float:
    """Multi-class Matthews correlation; a missing answer (-1) is its own wrong class."""
    return _one_score("mcc", items)


def _one_score(metric: str, items: Sequence[Pair]) -> float:
    """sklearn's ``f1_score(labels=<gold classes>, zero_division=0)`` and ``matthews_corrcoef``,
    bit for bit (tests/test_metrics.py), from one confusion matrix in sklearn's order of
    summation: sklearn's input checks cost ~5 ms a call, and a study scores thousands."""
    if not items:
        return float("nan")
    golds, preds = _split(items)
    matrix = confusion_matrices(golds, [preds])
    if metric == "mcc":
        return float(from_confusion(metric, matrix)[0])
    true, f1 = _class_f1(matrix)
    present = true[0] > 0  # F1 over the gold classes only
    weights = true[0][present] if metric == "f1_weighted" else None
    return float(np.average(f1[0][present], weights=weights))


def _scores(gold: int, pred: int) -> dict:
    return {
        "acc": float(pred == gold),
        "f1_macro": (gold, pred),
        "f1_weighted": (gold, pred),
        "mcc": (gold, pred),
    }


LENGTH_NORMALIZED = "_norm"  # suffix of the metrics of lm-eval's acc_norm rule
# Suffix of the metrics of the batch-calibrated rule: each label's posterior divided by its
# mean over the task's documents, then argmax (evidence/calibration.py). Computed from the
# logged per-label log-likelihoods, never logged by lm-eval itself.
BATCH_CALIBRATED = "_cal"


def process_results_mc(doc: dict, results: Sequence[tuple[float, bool]]) -> dict:
    """Multiple choice, the summed rule only: the choice with the highest log-likelihood.
    (Task files written from the version 1.0 template declare only these metrics.)"""
    lls = np.array([ll for ll, _ in results], dtype=float)
    return _scores(int(doc["gold"]), int(np.argmax(lls)))


def process_results_mc_both(doc: dict, results: Sequence[tuple[float, bool]]) -> dict:
    """Multiple choice by both rules: the summed log-likelihood, and lm-eval's ``acc_norm``
    (log-likelihood divided by the label's length in characters) with ``_norm`` metrics."""
    lls = np.array([ll for ll, _ in results], dtype=float)
    gold = int(doc["gold"])
    lengths = np.array([max(1, len(str(c))) for c in doc["choices"]], dtype=float)
    by_length = _scores(gold, int(np.argmax(lls / lengths)))
    return {**_scores(gold, int(np.argmax(lls))), **{m + LENGTH_NORMALIZED: v for m, v in by_length.items()}}


def decision_rule(metric: str) -> str:
    """``per_char`` for a metric of the acc_norm rule, ``calibrated`` for the batch-calibrated
    rule's, else ``sum``."""
    if metric.endswith(BATCH_CALIBRATED):
        return "calibrated"
    return "per_char" if metric.endswith(LENGTH_NORMALIZED) else "sum"


def base_metric(metric: str) -> str:
    """The metric's formula without its decision rule: ``f1_macro_norm`` is ``f1_macro``."""
    return metric.removesuffix(BATCH_CALIBRATED).removesuffix(LENGTH_NORMALIZED)


def process_results_gen(doc: dict, results: Sequence[str]) -> dict:
    """Generation: the label is parsed from the text; no label found -> missing, wrong."""
    pred = parse_label(results[0], doc["choices"])
    out = _scores(int(doc["gold"]), pred)
    out["missing"] = float(pred < 0)
    return out


# The metric -> corpus-level aggregation binding, beside the metrics: every finharness
# metric not listed here is a per-document score averaged over documents.
CORPUS_AGGREGATIONS = {f"{name}{rule}": fn for name, fn in (("f1_macro", f1_macro), ("f1_weighted", f1_weighted),
                                                              ("mcc", mcc))
                       for rule in ("", LENGTH_NORMALIZED, BATCH_CALIBRATED)}


def confusion_matrices(golds: Sequence[int] | np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Confusion matrices ``[row, gold, pred]`` of many prediction vectors at once (``preds``
    is rows x documents; ``golds`` the same shape, or one vector shared by every row). Labels
    are indices; a missing answer (-1) is one extra wrong class, as the metrics above treat it."""
    preds = np.atleast_2d(np.asarray(preds, dtype=np.int64))
    gold = np.broadcast_to(np.asarray(golds, dtype=np.int64), preds.shape)
    size = int(max(gold.max(initial=0), preds.max(initial=0))) + 2  # the last class: missing
    codes = gold * size + np.where(preds < 0, size - 1, preds)
    flat = (np.arange(len(codes))[:, None] * size * size + codes).ravel()
    return np.bincount(flat, minlength=len(codes) * size * size).reshape(len(codes), size, size)


def from_confusion(metric: str, matrices: np.ndarray) -> np.ndarray:
    """``f1_macro``, ``f1_weighted`` or ``mcc`` of each confusion matrix, with the formulas and
    conventions of the functions above (F1 over the gold classes, zero division 0; sklearn's
    multi-class MCC): the bootstrap and the random baseline score thousands of resamples with it."""
    metric = base_metric(metric)
    if metric in ("f1_macro", "f1_weighted"):
        true, f1 = _class_f1(matrices)
        present = true > 0
        if metric == "f1_macro":
            return (f1 * present).sum(axis=1) / present.sum(axis=1)
        return (f1 * true).sum(axis=1) / true.sum(axis=1)
    if metric == "mcc":
        true = matrices.sum(axis=2).astype(float)
        pred = matrices.sum(axis=1).astype(float)
        hits = np.diagonal(matrices, axis1=1, axis2=2).astype(float)
        n = true.sum(axis=1)
        cov_ytyp = hits.sum(axis=1) * n - (pred * true).sum(axis=1)
        cov_ypyp = n * n - (pred * pred).sum(axis=1)
        cov_ytyt = n * n - (true * true).sum(axis=1)
        denom = cov_ytyt * cov_ypyp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, cov_ytyp / np.sqrt(denom), 0.0)
    raise ValueError(f"{metric}: not a confusion-matrix metric (f1_macro, f1_weighted, mcc)")


def _class_f1(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per matrix and class: the gold count, and F1 = 2 tp / (gold count + predicted count), 0 where both are 0."""
    true = matrices.sum(axis=2).astype(float)
    pred = matrices.sum(axis=1).astype(float)
    hits = np.diagonal(matrices, axis1=1, axis2=2).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return true, np.where(true + pred > 0, 2 * hits / (true + pred), 0.0)


def document_mean(values: Sequence[Any]) -> float:
    return float(np.mean(np.asarray(values, dtype=float)))


def aggregation_of(metric: str):
    """How ``metric``'s per-document values become one score (the YAMLs' ``aggregation``)."""
    return CORPUS_AGGREGATIONS.get(metric, document_mean)
