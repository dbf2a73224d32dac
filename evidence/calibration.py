"""A decision rule that no label fixes: batch calibration of the label posteriors.

A fine-tune can raise accuracy by moving the decision threshold alone (answering the majority
label more often) while ranking the documents no better: the argmax of the raw log-likelihoods
rewards that. Batch calibration (Zhou et al., 2024, "Batch Calibration: Rethinking Calibration
for In-Context Learning and Prompt Engineering", ICLR) removes each checkpoint's own label
bias without any gold label: each document's label posteriors (softmax of the logged per-label
log-likelihoods) are divided by their mean over the task's scored documents, then argmax. It is
applied to every row alike (vanilla, fine-tuned, merged), needs no extra model call (unlike
contextual calibration's content-free input) and no held-out labels, which is why it was
chosen here; lm-eval's ``acc_mutual_info`` needs a second forward pass per label. A gain that
survives it is not a moved threshold. The calibration vector is estimated once on all of a
task's documents and held fixed in the bootstrap (a small optimism, shared by every row).

The rule's metrics carry the suffix ``_cal`` (``fin_tasks.common.metrics.BATCH_CALIBRATED``):
``acc_cal`` per document, ``f1_macro_cal`` and its kin as ``(gold, predicted)`` pairs, as the
summed rule logs them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evidence.discrimination import label_logliks, posteriors
from fin_tasks.common.metrics import BATCH_CALIBRATED, base_metric

GOLD_FROM = "f1_macro"  # finharness's pair-valued metrics log (gold, predicted)


def calibrated_predictions(logliks: np.ndarray) -> np.ndarray:
    """The argmax of each row's label posteriors divided by their mean over the rows."""
    post = posteriors(np.asarray(logliks, dtype=float))
    return np.argmax(post / post.mean(axis=0, keepdims=True), axis=-1)


def calibrated_values(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[int, Any]:
    """``doc_id -> value`` of a ``_cal`` metric, from a task's per-sample rows (all of them: the
    calibration is the task's). An error for a task without per-label log-likelihoods."""
    if not metric.endswith(BATCH_CALIBRATED):
        raise ValueError(f"{metric}: not a batch-calibrated metric (suffix {BATCH_CALIBRATED})")
    found = [label_logliks(r) for r in rows]
    if not rows or any(f is None for f in found) or len({len(f) for f in found}) != 1:
        raise ValueError(f"{metric}: the batch-calibrated rule needs each document's per-label "
                         "log-likelihoods (a multiple-choice task); this log has none")
    golds = [int(r[GOLD_FROM][0]) for r in rows]
    preds = calibrated_predictions(np.array(found))
    base = base_metric(metric)
    return {int(r["doc_id"]): (float(g == p) if base == "acc" else (g, int(p)))
            for r, g, p in zip(rows, golds, preds)}
