"""Did the fine-tune learn to rank documents, or only the prior? The AUC of the label
log-likelihoods (evidence/discrimination.py), checked against scikit-learn and on models
whose answer is known by construction."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from evidence.discrimination import discriminates, macro_auc, rows_auc
from evidence.stats import draw_indices

rng = np.random.default_rng(0)
GOLDS = rng.integers(0, 3, 300)


def informative(strength: float) -> np.ndarray:
    """Log-likelihoods that favour the gold label by ``strength`` nats, plus noise."""
    logliks = rng.normal(0, 1, (len(GOLDS), 3))
    logliks[np.arange(len(GOLDS)), GOLDS] += strength
    return logliks


def test_the_rank_auc_is_scikit_learns_macro_one_vs_rest_auc():
    logliks = informative(1.0)
    post = np.exp(logliks) / np.exp(logliks).sum(axis=1, keepdims=True)
    assert macro_auc(GOLDS, logliks)[0] == pytest.approx(roc_auc_score(GOLDS, post, multi_class="ovr", average="macro"))
    draws = draw_indices(len(GOLDS), 5, 1)
    for row, value in zip(draws, macro_auc(GOLDS, logliks, draws)):
        assert value == pytest.approx(roc_auc_score(GOLDS[row], post[row], multi_class="ovr", average="macro"))


def test_a_model_that_learned_only_the_prior_does_not_discriminate():
    # The same log-likelihoods for every document, tilted to the majority label: it answers the
    # prior everywhere, and ranks nothing.
    prior_only = np.tile([-0.2, -2.0, -3.0], (len(GOLDS), 1))
    rows = [{"doc_id": i, "f1_macro": [int(g), 0], "filtered_resps": [[str(x), "False"] for x in ll]}
            for i, (g, ll) in enumerate(zip(GOLDS, prior_only))]
    point, reps = rows_auc(rows, "t")
    assert point == pytest.approx(0.5) and not discriminates(reps)
    learned = [{**r, "filtered_resps": [[str(x), "False"] for x in ll]} for r, ll in zip(rows, informative(1.5))]
    point, reps = rows_auc(learned, "t")
    assert point > 0.75 and discriminates(reps)


def test_generation_rows_have_no_auc():
    assert rows_auc([{"doc_id": 0, "f1_macro": [0, 1], "filtered_resps": ["up"]}], "t") is None


def test_the_auc_interval_holds_its_level_on_finred_like_label_counts():
    """Issue 46: 26 labels, 18 with at most 3 documents. With every label averaged, a chance
    model's interval covered 0.5 92% of the time and passed the chance gate 5% of the time; with
    labels under 5 documents left out of the macro average it covers at least 94% and passes
    about 2.5% (200 seeded chance models: 95% and 2.5% here; averaging every label gives 91% and
    5% on the same models, so both bounds below fail it)."""
    from evidence.discrimination import macro_auc
    from evidence.stats import percentile_interval, task_draws

    rng = np.random.default_rng(0)
    counts = [13, 11, 11, 8, 8, 7, 7, 5] + [3] * 4 + [2] * 6 + [1] * 8
    golds = np.repeat(np.arange(len(counts)), counts)
    covered = passed = 0
    for i in range(200):
        logliks = rng.normal(0, 1, (len(golds), 29))
        reps = macro_auc(golds, logliks, task_draws("finred", len(golds), 500, i))
        low, high = percentile_interval(reps[np.isfinite(reps)])
        covered += low <= 0.5 <= high
        passed += low > 0.5
    assert covered / 200 >= 0.94 and passed / 200 <= 0.035
