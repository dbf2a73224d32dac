"""Claims decided by code (study/claims.py), on synthetic per-sample logs with a known effect.

Each "model" is a result folder holding an lm-eval-style per-sample log of one binary task,
its answers drawn to be right on a chosen share of 200 documents, so the truth is known:
a real gain must come out as ``agrees``, no gain as ``inconclusive``, and a model that
answers one label everywhere can win nothing.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.stats import holm
from plumbing.recipes import RecipeError
from study.cells import Bootstrap, Row
from study.claims import ClaimsFile, decide, load_claims

DOCS = 200
GOLD = np.random.default_rng(0).integers(0, 2, DOCS)
STAMP = "2026-01-01T00-00-00.000000"


def scored(folder: Path, preds: np.ndarray, task: str = "t") -> Path:
    """A result folder as `finharness eval` leaves it: per-sample (gold, pred) pairs, no baselines
    written (the table recomputes majority and random from the pairs)."""
    folder.mkdir(parents=True)
    (folder / f"results_{STAMP}.json").write_text(json.dumps({"results": {}}))
    with (folder / f"samples_{task}_{STAMP}.jsonl").open("w") as fh:
        for i, (g, p) in enumerate(zip(GOLD, preds)):
            fh.write(json.dumps({"doc_id": i, "acc": float(g == p), "f1_macro": [int(g), int(p)]}) + "\n")
    return folder


def right_on(share: float, seed: int) -> np.ndarray:
    ok = np.random.default_rng(seed).random(DOCS) < share
    return np.where(ok, GOLD, 1 - GOLD)


def row(kind: str, run: str, folder: Path) -> Row:
    return Row("m", kind, run, "zero-shot", run or kind, {"t": {None: [folder]}})


def claim(treatment: str, control: str = "", direction: str = "increase", **extra) -> dict:
    return {"id": f"{treatment}-vs-{control or 'vanilla'}", "says": "s", "source": "test",
            "treatment": {"model": "m", "kind": "single", "run": treatment},
            "control": {"model": "m", "kind": "single", "run": control} if control else {"model": "m"},
            "tasks": ["t"], "metric": "f1_macro", "direction": direction, **extra}


@pytest.fixture
def rows(tmp_path) -> list[Row]:
    return [row("vanilla", "", scored(tmp_path / "vanilla", right_on(0.5, 1))),
            row("single", "strong", scored(tmp_path / "strong", right_on(0.85, 2))),
            row("single", "moderate", scored(tmp_path / "moderate", right_on(0.62, 3))),
            row("single", "same", scored(tmp_path / "same", right_on(0.5, 4))),
            row("single", "constant", scored(tmp_path / "constant", np.zeros(DOCS, dtype=int)))]


def verdicts(rows, *claims, **settings):
    family = ClaimsFile.model_validate({"claims": list(claims), **settings})
    return decide(family, rows, Bootstrap(2000, 0), lambda task, metric: metric, None)


def test_a_known_gain_agrees_and_no_gain_is_inconclusive(rows):
    gain, none = verdicts(rows, claim("strong"), claim("same"))
    assert gain.verdict == "agrees" and gain.effect > 0.5 and gain.ci[0] > 0
    assert none.verdict == "inconclusive" and none.p_holm > 0.05
    # The direction matters: the same gain read as a predicted loss contradicts the paper.
    (wrong_way,) = verdicts(rows, claim("strong", direction="decrease"))
    assert wrong_way.verdict == "contradicts"


def test_a_constant_answer_scores_zero_and_loses_every_claim(rows):
    boot = Bootstrap(500, 0)
    constant = next(r for r in rows if r.run == "constant")
    assert boot.mean_over(constant, ["t"], lambda t: "f1_macro", normalized=True)[0] == 0.0
    # Raw macro-F1 of a constant answer is not 0 (0.5 x F1 of the answered class): only the
    # normalized score says "nothing learned".
    assert boot.mean_over(constant, ["t"], lambda t: "f1_macro")[0] > 0.3
    results = verdicts(rows, claim("constant"), claim("constant", "same"), claim("constant", "strong"))
    assert [v.verdict for v in results][:2] == ["inconclusive", "inconclusive"]
    assert results[2].verdict == "contradicts"
    assert not any(v.verdict == "agrees" for v in results)


def test_holm_correction_is_applied_across_the_claims_of_a_file(rows):
    (alone,) = verdicts(rows, claim("moderate"))
    assert alone.verdict == "agrees" and 0.0125 < alone.p < 0.05
    # The same claim among three null ones: its p-value is multiplied by up to 4 and it no longer passes.
    family = verdicts(rows, claim("moderate"), claim("same"),
                      {**claim("same"), "id": "null-2"}, {**claim("same"), "id": "null-3"})
    assert family[0].p == alone.p
    assert [v.p_holm for v in family] == pytest.approx(holm([v.p for v in family]))
    assert family[0].p_holm == pytest.approx(4 * alone.p)
    assert family[0].verdict == "inconclusive"


def test_not_testable_when_the_paper_effect_is_below_what_the_run_can_detect(rows):
    small, large = verdicts(rows, claim("same", paper_effect={"value": 0.01, "metric": "f1_macro"}),
                            {**claim("same", paper_effect={"value": 0.9, "metric": "f1_macro"}), "id": "large"})
    assert small.mde > 0.01 and small.verdict == "not testable at this size"
    # Documents needed grow with the square of MDE / effect.
    assert small.documents_needed == int(np.ceil(DOCS * (small.mde / 0.01) ** 2))
    assert large.verdict == "inconclusive" and large.documents_needed < DOCS


def test_a_loss_needs_a_control_above_its_trivial_baseline(rows):
    # The vanilla model is at chance: a "fine-tuning costs unseen score" claim cannot be tested.
    (floor,) = verdicts(rows, claim("same", direction="decrease", floor_check=True))
    assert floor.verdict == "not testable: control at trivial baseline"
    (fine,) = verdicts(rows, {**claim("same", "strong", direction="decrease", floor_check=True)})
    assert fine.verdict == "agrees"


def test_a_claim_naming_no_row_is_an_error_naming_the_claim(rows, tmp_path):
    with pytest.raises(RecipeError, match=r"claims.nope-vs-vanilla: m single nope \(zero-shot\) matches no row"):
        verdicts(rows, claim("nope"))
    (tmp_path / "claims.yaml").write_text("claims:\n  - {id: a, says: s, source: s, tasks: seen, direction: up,\n"
                                          "     treatment: {model: m}, control: {model: m}}\n")
    with pytest.raises(RecipeError, match=r"claims.yaml.*direction"):
        load_claims(tmp_path)


def test_the_shipped_claims_files_parse_and_name_their_study_rows():
    from study.claims import check_claims
    from study.spec import load_study

    recipes = Path(__file__).resolve().parents[1] / "recipes" / "studies"
    for name in ("fin-instruct-merge", "ft-generalization"):
        claims = load_claims(recipes / name)
        assert len(claims.claims) >= 4
        check_claims(claims, load_study(recipes / name), name)
