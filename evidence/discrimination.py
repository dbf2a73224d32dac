"""Does a model rank documents by their label, or only answer the prior?

A fine-tune that learned only the answer format and the label prior predicts the majority
label well and ranks documents no better than chance. The check is the **macro one-vs-rest
AUC of the label log-likelihoods**: for each gold label present, how often a document of
that label gets a higher posterior for it (softmax of the labels' log-likelihoods, as the
per-sample log holds them) than a document of another label; 0.5 is chance, whatever the
answers' label shares. Computed with ranks (Mann-Whitney U, ties at half; the same number
as scikit-learn's ``roc_auc_score``, checked in tests/test_discrimination.py), for every
bootstrap draw of the documents at once.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from evidence.stats import percentile_interval, task_draws

RESAMPLES = 1000
CHANCE = 0.5


def label_logliks(row: Mapping[str, Any]) -> list[float] | None:
    """The per-label log-likelihoods of a multiple-choice sample (None for a generation task)."""
    found = row.get("filtered_resps")
    try:
        values = [float(r[0] if isinstance(r, (list, tuple)) else r) for r in found]
    except (TypeError, ValueError, IndexError):
        return None
    return values if len(values) >= 2 else None


def posteriors(logliks: np.ndarray) -> np.ndarray:
    """Softmax of each document's per-label log-likelihoods (the last axis)."""
    shifted = logliks - logliks.max(axis=-1, keepdims=True)
    odds = np.exp(shifted)
    return odds / odds.sum(axis=-1, keepdims=True)


def _binary(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AUC of ``scores`` for ``positive`` along the last axis (rows: draws); NaN without both classes."""
    ranks = rankdata(scores, axis=-1)
    n_pos = positive.sum(axis=-1)
    n_neg = positive.shape[-1] - n_pos
    u = (ranks * positive).sum(axis=-1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


MIN_LABEL_DOCS = 5  # a label with fewer documents has a one-vs-rest AUC too noisy to average


def macro_auc(golds: Sequence[int], logliks: np.ndarray, draws: np.ndarray | None = None) -> np.ndarray:
    """Macro one-vs-rest AUC over the gold labels with at least :data:`MIN_LABEL_DOCS` documents
    (all labels present when none has): one value, or one per row of ``draws``. FinRED's 26
    labels, 18 of them with at most 3 documents, gave an interval that covered a chance model's
    0.5 only 92% of the time and passed the chance gate 5% of the time instead of 2.5%
    (tests/test_discrimination.py)."""
    golds = np.asarray(golds, dtype=np.int64)
    post = posteriors(np.asarray(logliks, dtype=float))
    index = np.arange(len(golds))[None, :] if draws is None else draws
    labels, counts = np.unique(golds, return_counts=True)
    present = labels[counts >= MIN_LABEL_DOCS] if (counts >= MIN_LABEL_DOCS).any() else labels
    per_label = [_binary(post[index, k], golds[index] == k) for k in present]
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.stack(per_label), axis=0) if per_label else np.full(len(index), np.nan)


def rows_auc(rows: Sequence[Mapping[str, Any]], task: str, resamples: int = RESAMPLES,
             seed: int = 0) -> tuple[float, np.ndarray] | None:
    """AUC of one scored task (its per-sample rows, in doc order) and its document replicates,
    drawn with the task's own seeded draws (evidence.stats.task_draws); None for generation."""
    rows = sorted(rows, key=lambda r: int(r["doc_id"]))
    found = [label_logliks(r) for r in rows]
    if not rows or any(f is None for f in found) or len({len(f) for f in found}) != 1:
        return None
    golds = [int(r["f1_macro"][0]) if isinstance(r.get("f1_macro"), list) else int(r["doc"]["gold"]) for r in rows]
    logliks = np.array(found)
    point = float(macro_auc(golds, logliks)[0])
    reps = macro_auc(golds, logliks, task_draws(task, len(rows), resamples, seed))
    return point, reps


def discriminates(reps: np.ndarray, level: float = 0.95) -> bool:
    """The AUC interval lies above chance."""
    finite = reps[np.isfinite(reps)]
    return bool(len(finite)) and percentile_interval(finite, level)[0] > CHANCE
