"""The corpus-level metrics agree with scikit-learn, and labels are parsed as a reader would."""
import math

import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from fin_tasks.common.metrics import (
    f1_macro, f1_weighted, mcc, process_results_gen, process_results_mc,
)
from fin_tasks.common.parsing import parse_label

# Hand-made 3-class predictions, including a missing answer (-1) and a class (2) that is
# predicted but never gold in the last slice.
GOLDS = [0, 0, 1, 1, 1, 2, 2, 0, 1, 2]
PREDS = [0, 1, 1, 1, -1, 2, 0, 0, 2, 2]


def test_macro_f1_matches_sklearn_over_gold_labels():
    items = list(zip(GOLDS, PREDS))
    expected = f1_score(GOLDS, PREDS, labels=[0, 1, 2], average="macro")
    assert f1_macro(items) == pytest.approx(expected)
    # The missing answer is a wrong prediction for its gold class, not a fourth class.
    assert f1_macro(items) < f1_score(GOLDS, [g if p < 0 else p for g, p in items], average="macro")


def test_weighted_f1_matches_sklearn():
    items = list(zip(GOLDS, PREDS))
    assert f1_weighted(items) == pytest.approx(f1_score(GOLDS, PREDS, labels=[0, 1, 2], average="weighted"))


def test_mcc_matches_sklearn_multiclass():
    items = list(zip(GOLDS, PREDS))
    assert mcc(items) == pytest.approx(matthews_corrcoef(GOLDS, PREDS))


def test_f1_ignores_classes_absent_from_gold():
    golds, preds = [0, 0, 1, 1], [0, 2, 1, 1]  # class 2 predicted once, never gold
    expected = f1_score(golds, preds, labels=[0, 1], average="macro")
    assert f1_macro(list(zip(golds, preds))) == pytest.approx(expected)


def test_every_score_is_sklearns_bit_for_bit_on_random_answers():
    """The scores come from one confusion matrix in sklearn's order of summation (sklearn's
    input checks cost ~5 ms a call): equal to the last bit, so results scored before agree."""
    import warnings

    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(150):
        docs, labels = int(rng.integers(1, 200)), int(rng.integers(1, 12))
        golds = rng.integers(0, labels, docs)
        preds = rng.integers(-1, labels + 2, docs)  # missing answers and labels never gold
        preds = np.where(rng.random(docs) < rng.random(), golds, preds)
        items = list(zip(golds.tolist(), preds.tolist()))
        present = sorted(set(golds.tolist()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's note on a single label
            assert f1_macro(items) == f1_score(golds, preds, labels=present, average="macro", zero_division=0)
            assert f1_weighted(items) == f1_score(golds, preds, labels=present, average="weighted", zero_division=0)
            assert mcc(items) == matthews_corrcoef(golds, preds)


def test_perfect_and_empty():
    assert f1_macro([(1, 1), (0, 0)]) == 1.0
    assert mcc([(1, 1), (0, 0)]) == 1.0
    assert math.isnan(f1_macro([]))


def test_multiple_choice_prediction_is_the_most_likely_choice():
    doc = {"gold": 2, "choices": ["negative", "neutral", "positive"]}
    out = process_results_mc(doc, [(-3.0, False), (-2.5, False), (-0.7, True)])
    assert out["acc"] == 1.0 and out["f1_macro"] == (2, 2)
    out = process_results_mc(doc, [(-0.1, True), (-2.5, False), (-0.7, False)])
    assert out["acc"] == 0.0 and out["mcc"] == (2, 0)


def test_generation_accuracy_and_missing_rate():
    doc = {"gold": 0, "choices": ["negative", "neutral", "positive"]}
    assert process_results_gen(doc, [" Negative."]) == {
        "acc": 1.0, "f1_macro": (0, 0), "f1_weighted": (0, 0), "mcc": (0, 0), "missing": 0.0,
    }
    unparsed = process_results_gen(doc, [" I cannot tell"])
    assert unparsed["acc"] == 0.0 and unparsed["missing"] == 1.0 and unparsed["f1_macro"] == (0, -1)
    accs = [process_results_gen(doc, [t])["acc"] for t in ["negative", "positive", "??"]]
    assert accuracy_score([1, 0, 0], accs) == 1.0


@pytest.mark.parametrize(
    "text, expected",
    [
        (" positive", 2),
        ("Negative. The statement is not positive", 0),  # first mention wins
        ("NEUTRAL", 1),
        ("nothing to see", -1),
        ("positively", -1),  # whole words only
    ],
)
def test_parse_sentiment(text, expected):
    assert parse_label(text, ["negative", "neutral", "positive"]) == expected


def test_parse_prefers_the_longer_label_at_the_same_place():
    relations = ["owned by", "owner of", "owner", "product/material produced"]
    assert parse_label(" owner of the brand", relations) == 1
    assert parse_label("product/material produced", relations) == 3
    assert parse_label("up", ["up", "stable", "down"]) == 0
    assert parse_label("upgrade", ["up", "stable", "down"]) == -1
