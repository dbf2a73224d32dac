"""Every score beside what a trivial answer gets on the same documents, and collapse flagged."""
import json

import pytest

from harness.baselines import normalize, task_baselines

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
    # Uniform random guessing over 3 labels: about a third right (mean of 200 seeded draws).
    assert found.baselines["random"]["acc"] == pytest.approx(1 / 3, abs=0.05)


def test_a_model_that_always_answers_one_label_scores_zero_normalized_and_is_flagged():
    pairs = [(g, 1) for g in GOLDS]  # "neutral" for everything: exactly the majority baseline
    found = task_baselines("t", LABELS, pairs, train_golds=None, scores=scores_of(pairs))
    assert found.collapsed == "neutral" and found.predicted == {"neutral": 4}
    assert found.normalized == {"acc": 0.0, "f1_macro": 0.0, "f1_weighted": 0.0, "mcc": 0.0}


def test_a_model_that_learned_something_is_credited_and_not_flagged():
    pairs = [(1, 1), (1, 1), (0, 0), (2, 1)]
    found = task_baselines("t", LABELS, pairs, train_golds=None, scores=scores_of(pairs))
    assert found.collapsed is None and found.predicted == {"neutral": 3, "negative": 1}
    assert found.normalized["acc"] == pytest.approx((0.75 - 0.5) / (1 - 0.5))
    assert found.normalized["f1_macro"] > 0


def test_normalization_clips_at_zero_and_a_perfect_baseline_credits_nothing():
    assert normalize(0.3, 0.5) == 0.0 and normalize(1.0, 0.5) == 1.0 and normalize(1.0, 1.0) == 0.0


def test_eval_writes_histograms_and_prints_baseline_rows(tiny_checkpoint, tmp_path):
    from finharness.main import main
    from harness.report import score_table

    assert main(["eval", "-m", str(tiny_checkpoint), "-t", "fin_fpb,generative_fin_fomc", "--limit", "6",
                 "--chat_template", "off", "-o", str(tmp_path / "r")]) == 0
    results = json.loads(next((tmp_path / "r").rglob("results_*.json")).read_text())
    found = results["finharness"]["baselines"]
    assert set(found) == {"fin_fpb", "generative_fin_fomc"}
    for task, entry in found.items():
        assert sum(entry["predicted"].values()) == entry["docs"] == 6
        assert set(entry["baselines"]) == {"majority", "train prior", "random"}
        top = max(entry["predicted"].values())
        assert (entry["collapsed"] is not None) == (top >= 0.9 * 6)
    table = score_table(results)
    assert "· majority: " in table and "· train prior: " in table and "f1_macro normalized" in table
    for task, entry in found.items():
        assert (f"{task} (collapsed)" in table) == (entry["collapsed"] is not None)


def test_the_vectorized_random_baseline_is_the_metrics_own_arithmetic():
    import numpy as np

    from harness.baselines import RANDOM_DRAWS, _score, random_scores

    golds = [0, 0, 1, 2, 2, 2, 1, 0, 0, 0, 2, 1]
    draws = np.random.default_rng(7).integers(0, 3, (RANDOM_DRAWS, len(golds)))
    by_sklearn = {m: float(np.mean([_score(m, list(zip(golds, row))) for row in draws]))
                  for m in ("acc", "f1_macro", "f1_weighted", "mcc")}
    assert random_scores(golds, 3, list(by_sklearn), seed=7) == pytest.approx(by_sklearn, abs=1e-12)
