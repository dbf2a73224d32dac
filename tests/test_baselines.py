"""Every score beside what a trivial answer gets on the same documents, and collapse flagged."""
import json

import pytest

from evidence.baselines import normalize, task_baselines
from evidence.records import RunRecord
from tests.helpers.records import undeclared

LABELS = ["negative", "neutral", "positive"]
GOLDS = [1, 1, 0, 2]  # majority: neutral (2 of 4)


def scores_of(pairs):
    from fin_tasks.common.metrics import f1_macro, f1_weighted, mcc

    return {"acc": sum(g == p for g, p in pairs) / len(pairs), "f1_macro": f1_macro(pairs),
            "f1_weighted": f1_weighted(pairs), "mcc": mcc(pairs)}


def test_the_constant_baselines_by_hand():
    found = task_baselines("t", LABELS, [(g, 1) for g in GOLDS], train_golds=[2, 2, 2, 0], scores={"acc": 0.5,
                           "f1_macro": 0.0, "f1_weighted": 0.0, "mcc": 0.0})
    majority = found.baselines["majority"]
    # Always "neutral": right on 2 of 4; F1(neutral) = 2*0.5*1/(1.5) = 2/3, the other classes 0.
    assert majority["acc"] == 0.5 and majority["f1_macro"] == pytest.approx((2 / 3) / 3)
    assert majority["f1_weighted"] == pytest.approx((2 / 3) * 0.5) and majority["mcc"] == 0
    # The training split's prior is "positive": right on 1 of 4.
    assert found.answers == {"majority": "neutral", "train prior": "positive"}
    assert found.baselines["train prior"]["acc"] == 0.25
    # Uniform random guessing over 3 labels: exactly a third right in expectation.
    assert found.baselines["uniform random"]["acc"] == pytest.approx(1 / 3)
    # Guessing with the training split's shares (3/4 positive, 1/4 negative): right with
    # probability 3/4 * 1/4 (positive) + 1/4 * 1/4 (negative) = 1/4.
    assert found.baselines["prior-matched random"]["acc"] == pytest.approx(0.25)


def test_a_model_that_always_answers_one_label_scores_zero_normalized_and_is_flagged():
    pairs = [(g, 1) for g in GOLDS]  # "neutral" for everything: exactly the majority baseline
    found = task_baselines("t", LABELS, pairs, train_golds=None, scores=scores_of(pairs))
    assert found.collapsed == "neutral" and found.predicted == {"neutral": 4}
    assert found.gold == {"neutral": 2, "negative": 1, "positive": 1} and found.distance == 0.5
    # Majority is the best trivial answer on accuracy (it *is* this model): normalized 0 there.
    # On macro-F1 random guessing beats any constant answer, so the constant scores below 0
    # (unclipped: the board and the claims see how far below).
    assert found.normalized["acc"] == 0.0 and -0.2 < found.normalized["f1_macro"] < 0
    assert all(value <= 1e-9 for value in found.normalized.values())


def test_a_perfect_classifier_on_an_imbalanced_slice_is_never_flagged():
    golds = [0] * 37 + [1] * 3  # FinCausal's slice: 92% one label
    perfect = [(g, g) for g in golds]
    found = task_baselines("t", ["noise", "causal"], perfect, train_golds=None, scores=scores_of(perfect))
    assert found.collapsed is None and found.distance == 0.0 and found.mcc == 1.0


def test_partial_collapse_onto_the_wrong_label_is_flagged():
    # 35 of 40 answers are the rare label: not >= 90% of them, but far from gold, and no
    # positive association with it (MCC below 0.1).
    golds = [0] * 37 + [1] * 3
    preds = [1] * 33 + [0] * 4 + [1, 1, 0]
    pairs = list(zip(golds, preds))
    found = task_baselines("t", ["noise", "causal"], pairs, train_golds=None, scores=scores_of(pairs))
    assert found.predicted["causal"] == 35 and found.distance >= 0.3 and found.mcc < 0.1
    assert found.collapsed == "causal"


def test_prior_matched_guessing_beats_uniform_guessing_where_labels_are_imbalanced():
    from evidence.baselines import guess_scores, label_shares, random_scores

    golds = [0] * 30 + [1] * 8 + [2] * 2  # an imbalanced slice (FPB-like)
    metrics = ["acc", "f1_macro", "f1_weighted"]
    uniform = random_scores(golds, 3, metrics)
    prior = guess_scores(golds, label_shares(golds, 3), metrics)
    assert prior["acc"] > uniform["acc"] and prior["f1_weighted"] > uniform["f1_weighted"]
    # Accuracy is exact: sum over labels of guess share x gold share.
    assert prior["acc"] == pytest.approx((30 / 40) ** 2 + (8 / 40) ** 2 + (2 / 40) ** 2)


def test_a_model_that_learned_something_is_credited_and_not_flagged():
    pairs = [(1, 1), (1, 1), (0, 0), (2, 1)]
    found = task_baselines("t", LABELS, pairs, train_golds=None, scores=scores_of(pairs))
    assert found.collapsed is None and found.predicted == {"neutral": 3, "negative": 1}
    assert found.normalized["acc"] == pytest.approx((0.75 - 0.5) / (1 - 0.5))
    assert found.normalized["f1_macro"] > 0


def test_normalization_is_linear_and_only_display_clips():
    from evidence.baselines import for_display

    assert normalize(0.3, 0.5) == pytest.approx(-0.4) and normalize(1.0, 0.5) == 1.0 and normalize(1.0, 1.0) == 0.0
    assert for_display(normalize(0.3, 0.5)) == 0.0 and for_display(0.25) == 0.25


def test_eval_writes_histograms_and_prints_baseline_rows(tiny_checkpoint, tmp_path):
    from evidence.report import score_table
    from finharness.main import main

    assert main(["eval", "-m", str(tiny_checkpoint), "-t", "fin_fpb,generative_fin_fomc", "--limit", "6",
                 "--chat_template", "off", "-o", str(tmp_path / "r")]) == 0
    results = json.loads(next((tmp_path / "r").rglob("results_*.json")).read_text())
    found = results["finharness"]["baselines"]
    assert set(found) == {"fin_fpb", "generative_fin_fomc"}
    assert undeclared(results["finharness"], RunRecord) == []  # evidence/records.py declares every key
    for task, entry in found.items():
        assert sum(entry["predicted"].values()) == entry["docs"] == 6
        assert set(entry["baselines"]) == {"majority", "train prior", "uniform random", "prior-matched random"}
        assert sum(entry["gold"].values()) == 6
        assert (entry["collapsed"] is not None) == (entry["distance"] >= 0.3 and entry["mcc"] < 0.1)
    table = score_table(results)
    assert "· majority: " in table and "· train prior: " in table and "f1_macro normalized" in table
    for task, entry in found.items():
        assert (f"{task} (collapsed)" in table) == (entry["collapsed"] is not None)


def test_the_vectorized_random_baseline_is_the_metrics_own_arithmetic():
    import numpy as np

    from evidence.baselines import RANDOM_DRAWS, _score, guess_scores

    golds = [0, 0, 1, 2, 2, 2, 1, 0, 0, 0, 2, 1]
    shares = [0.5, 0.2, 0.3]
    draws = np.random.default_rng(7).choice(3, size=(RANDOM_DRAWS, len(golds)), p=shares)
    by_sklearn = {m: float(np.mean([_score(m, list(zip(golds, row))) for row in draws]))
                  for m in ("f1_macro", "f1_weighted", "mcc")}
    assert guess_scores(golds, shares, list(by_sklearn), seed=7) == pytest.approx(by_sklearn, abs=1e-12)
