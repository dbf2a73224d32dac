"""Claims decided by code (study/claims.py), on synthetic per-sample logs with a known effect.

Each "model" is a result folder holding an lm-eval-style per-sample log of one binary task,
its answers drawn to be right on a chosen share of 200 documents, so the truth is known:
a real gain must come out as ``agrees``, no gain as ``inconclusive``, a model that answers
one label everywhere can win nothing, and two rows at the floor are not a test.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evidence.stats import holm
from plumbing.recipes import RecipeError
from study.cells import Bootstrap, Row
from study.claims import ClaimsFile, decide, load_claims

DOCS = 200
GOLD = np.random.default_rng(0).integers(0, 2, DOCS)
STAMP = "2026-01-01T00-00-00.000000"


def scored(folder: Path, preds: np.ndarray | None, task: str = "t", by_length: np.ndarray | None = None,
           logliks: np.ndarray | None = None) -> Path:
    """A result folder as `finharness eval` leaves it: per-sample (gold, pred) pairs (and, for
    the acc_norm rule, the per-character rule's own), the per-label log-likelihoods the answers
    are the argmax of (given, or the predicted label one nat above the other), with the
    documents' label set."""
    folder.mkdir(parents=True)
    (folder / f"results_{STAMP}.json").write_text(json.dumps({"results": {}}))
    if logliks is None:
        logliks = np.where(np.arange(2)[None, :] == np.asarray(preds)[:, None], -1.0, -2.0)
    preds = np.argmax(logliks, axis=1) if preds is None else preds
    by_length = preds if by_length is None else by_length
    with (folder / f"samples_{task}_{STAMP}.jsonl").open("w") as fh:
        for i, (g, p, q, ll) in enumerate(zip(GOLD, preds, by_length, logliks)):
            fh.write(json.dumps({"doc_id": i, "doc": {"choices": ["no", "yes"], "gold": int(g)},
                                 "filtered_resps": [[float(x), "False"] for x in ll],
                                 "acc": float(g == p), "f1_macro": [int(g), int(p)],
                                 "acc_norm": float(g == q), "f1_macro_norm": [int(g), int(q)]}) + "\n")
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


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> list[Row]:
    tmp = tmp_path_factory.mktemp("claims")
    return [row("vanilla", "", scored(tmp / "vanilla", right_on(0.7, 1))),
            row("single", "strong", scored(tmp / "strong", right_on(0.92, 2))),
            row("single", "moderate", scored(tmp / "moderate", right_on(0.79, 5))),
            row("single", "same", scored(tmp / "same", right_on(0.7, 4))),
            row("single", "chance", scored(tmp / "chance", right_on(0.5, 6))),
            row("single", "chance-too", scored(tmp / "chance-too", right_on(0.5, 7))),
            row("single", "constant", scored(tmp / "constant", np.zeros(DOCS, dtype=int))),
            row("single", "long-labels", scored(tmp / "long-labels", right_on(0.5, 8), by_length=right_on(0.9, 9)))]


def verdicts(rows, *claims, **settings):
    family = ClaimsFile.model_validate({"claims": list(claims), **settings})
    return decide(family, rows, Bootstrap(1000, 0), lambda task, metric: metric, None)


def test_a_known_gain_agrees_and_no_gain_is_inconclusive(rows):
    gain, none = verdicts(rows, claim("strong"), claim("same"))
    assert gain.verdict == "agrees" and gain.effect > 0.3 and gain.ci[0] > 0
    assert none.verdict == "inconclusive" and none.p_holm > 0.05
    # The direction matters: the same gain read as a predicted loss contradicts the paper.
    (wrong_way,) = verdicts(rows, claim("strong", direction="decrease"))
    assert wrong_way.verdict == "contradicts"


def test_the_interval_is_t_type_around_the_effect_and_the_p_value_matches_it(rows):
    from scipy.stats import t

    (gain,) = verdicts(rows, claim("moderate"))
    half = t.ppf(0.975, gain.df) * gain.se
    assert gain.ci == pytest.approx((gain.effect - half, gain.effect + half))
    assert gain.p == pytest.approx(2 * t.sf(abs(gain.effect) / gain.se, gain.df))
    # One training seed per row: no seed component, the documents alone.
    assert gain.seed_sd == 0 and gain.doc_sd == pytest.approx(gain.se)


def test_a_constant_answer_scores_at_or_below_zero_and_loses_every_claim(rows):
    boot = Bootstrap(500, 0)
    constant = next(r for r in rows if r.run == "constant")
    normalized = boot.mean_over(constant, ["t"], lambda t: "f1_macro", normalized=True)[0]
    # Raw macro-F1 of a constant answer is not 0 (0.5 x F1 of the answered class): only the
    # normalized score says "nothing learned", and unclipped it says "worse than guessing".
    assert boot.mean_over(constant, ["t"], lambda t: "f1_macro")[0] > 0.3 and normalized < 0
    results = verdicts(rows, claim("constant"), claim("constant", "same"), claim("constant", "strong"))
    assert not any(v.verdict == "agrees" for v in results)
    assert results[2].verdict == "contradicts"


def test_holm_correction_is_applied_across_the_claims_of_a_file(rows):
    (alone,) = verdicts(rows, claim("moderate"))
    assert alone.verdict == "agrees" and 0.0125 < alone.p < 0.05  # the design puts it between alpha/4 and alpha
    # The same claim among three null ones: its p-value is multiplied by up to 4 and it no longer passes.
    family = verdicts(rows, claim("moderate"), claim("same"),
                      {**claim("same"), "id": "null-2"}, {**claim("same"), "id": "null-3"})
    assert family[0].p == alone.p
    assert [v.p_holm for v in family] == pytest.approx(holm([v.p for v in family]))
    assert family[0].p_holm == pytest.approx(4 * alone.p)
    assert family[0].verdict == "inconclusive"


def test_the_size_rule_compares_in_the_claims_metric_and_names_both_sizes(rows):
    small, large = verdicts(rows, claim("same", paper_effect={"value": 0.01, "metric": "f1_macro"}),
                            {**claim("same", paper_effect={"value": 0.6, "metric": "f1_macro"}), "id": "large"})
    # A normalized claim converts the paper's raw magnitude by 1 / (1 - b), b the best trivial macro-F1.
    boot = Bootstrap(10, 0)
    vanilla = rows[0]
    b = max(boot.baselines(vanilla.sources["t"][None][0], "t", "f1_macro").values())
    assert small.paper_in_metric == pytest.approx(0.01 / (1 - b))
    assert small.mde > small.paper_in_metric and small.verdict == "not testable at this size"
    assert small.documents_needed > DOCS and small.seeds_needed is None  # one seed: no seed component to grow
    assert large.verdict == "inconclusive" and large.documents_needed < DOCS
    # A magnitude in another metric gets no size verdict at all.
    (other,) = verdicts(rows, claim("same", paper_effect={"value": 0.01, "metric": "f1_weighted"}))
    assert other.paper_in_metric is None and other.verdict == "inconclusive"
    assert "no size verdict" in other.note


def test_the_mde_is_larger_under_the_alternative_than_at_two_rows_at_the_floor(rows):
    # Two rows that both answer near chance: the observed document spread understates what
    # the test would face if the treatment really learned; the MDE is computed under that.
    (floor,) = verdicts(rows, claim("chance", "chance-too", floor_check=False))
    from scipy.stats import t

    k = t.ppf(1 - 0.05 / 2, floor.df) + t.ppf(0.8, floor.df)
    assert floor.mde > 0 and floor.mde != pytest.approx(k * floor.se)


def test_a_loss_needs_a_control_above_its_trivial_baseline(rows):
    # A model at chance as the control: a "fine-tuning costs unseen score" claim cannot be tested.
    (floor,) = verdicts(rows, claim("same", "chance", direction="decrease"))
    assert floor.verdict == "not testable: control at trivial baseline"
    assert floor.floor["m chance"].startswith("at floor") and floor.floor["m same"].startswith("clears")
    (fine,) = verdicts(rows, claim("chance", "strong", direction="decrease"))
    assert fine.verdict == "agrees"


def test_two_rows_both_at_the_floor_are_a_note_on_a_rise_and_no_test_of_a_loss(rows):
    # A loss needs a control above its floor: nothing to lose otherwise.
    (loss,) = verdicts(rows, claim("chance", "chance-too", direction="decrease"))
    assert loss.verdict == "not testable: control at trivial baseline"
    # A rise from the floor is still a test (a row below its floor can rise to it): read, with a note.
    (rise,) = verdicts(rows, claim("chance", "chance-too"))
    assert rise.verdict == "inconclusive" and "neither row's normalized score clears 0" in rise.note
    # The rules before 2026-12-07 read both as "not testable"; a run made under them keeps that word.
    family = ClaimsFile.model_validate({"claims": [claim("chance", "chance-too")]})
    (earlier,) = decide(family, rows, Bootstrap(1000, 0), lambda task, metric: metric, None, current=False)
    assert earlier.verdict == "not testable: both rows at trivial baseline" and earlier.reading == "inconclusive"


def test_the_decision_rule_is_named_and_decides_on_its_own_metrics(rows):
    summed, per_char = verdicts(rows, claim("long-labels"), {**claim("long-labels", rule="per_char"), "id": "norm"})
    assert summed.rule == "sum" and per_char.rule == "per_char" and per_char.metric == "f1_macro_norm normalized"
    assert per_char.effect > summed.effect + 0.3  # this model is right by the per-character rule only


def test_a_claim_naming_an_unscored_task_is_refused_naming_it(rows):
    with pytest.raises(RecipeError, match=r"claims.strong-vs-vanilla: tasks: fin_fpbx: no row of the claim scored it"):
        verdicts(rows, {**claim("strong"), "tasks": ["t", "fin_fpbx"]})


def test_a_claim_naming_no_row_is_an_error_naming_the_claim(rows, tmp_path):
    with pytest.raises(RecipeError, match=r"claims.nope-vs-vanilla: m single nope \(zero-shot\) matches no row"):
        verdicts(rows, claim("nope"))
    (tmp_path / "claims.yaml").write_text("claims:\n  - {id: a, says: s, source: s, tasks: seen, direction: up,\n"
                                          "     treatment: {model: m}, control: {model: m}}\n")
    with pytest.raises(RecipeError, match=r"claims.yaml.*direction"):
        load_claims(tmp_path)


def test_the_claims_file_is_pinned_when_the_first_evaluation_starts(tmp_path):
    from study.claims import preregistration_note, record_claims

    folder, root = tmp_path / "study", tmp_path / "out"
    folder.mkdir()
    (folder / "claims.yaml").write_text("claims: []\n")
    assert "no record" in preregistration_note(folder, root)
    record_claims(folder, root)
    assert "is the file recorded when the first evaluation started" in preregistration_note(folder, root)
    (folder / "claims.yaml").write_text("claims: [changed]\n")
    record_claims(folder, root)  # a later evaluation does not move the pin
    note = preregistration_note(folder, root)
    assert "changed after the evaluations started" in note and "Recorded" in note


def test_the_shipped_claims_files_parse_and_name_their_study_rows():
    from study.claims import check_claims
    from study.spec import load_study

    recipes = Path(__file__).resolve().parents[1] / "recipes" / "studies"
    for name in ("fin-instruct-merge", "ft-generalization"):
        claims = load_claims(recipes / name)
        assert len(claims.claims) >= 4
        check_claims(claims, load_study(recipes / name), name)


def test_a_gain_made_of_seen_documents_vanishes_on_the_clean_subset(tmp_path):
    """A model that memorized 80 test documents (its evaluation flagged them) and answers the rest
    as the vanilla model does: a gain on all documents, none on the clean subset."""
    vanilla_preds = right_on(0.8, 11)
    memorized = np.arange(80)
    preds = vanilla_preds.copy()
    preds[memorized] = GOLD[memorized]
    folder = scored(tmp_path / "memorizer", preds)
    record = {"finharness": {"contamination": {"t": {"contaminated": memorized.tolist()}}}, "results": {}}
    next(folder.glob("results_*.json")).write_text(json.dumps(record))
    rows = [row("vanilla", "", scored(tmp_path / "vanilla", vanilla_preds)), row("single", "memorizer", folder)]
    everything, clean = verdicts(rows, claim("memorizer"), {**claim("memorizer"), "id": "clean", "subset": "clean"})
    assert everything.verdict == "agrees" and everything.documents == DOCS
    assert clean.documents == DOCS - 80 and clean.effect == pytest.approx(0.0, abs=1e-12)
    assert clean.verdict == "inconclusive" and "t 80 documents left out" in clean.note


def with_logliks(folder: Path, logliks: np.ndarray) -> Path:
    """Add each document's label log-likelihoods to a scored folder's per-sample log."""
    path = next(folder.glob("samples_*.jsonl"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, "filtered_resps": [[str(x), "False"] for x in ll]}) + "\n"
                            for r, ll in zip(rows, logliks)))
    return folder


def test_a_treatment_that_learned_only_the_prior_is_not_testable(tmp_path):
    rng = np.random.default_rng(3)
    learned = rng.normal(0, 1, (DOCS, 2))
    learned[np.arange(DOCS), GOLD] += 2.0
    flat = np.tile([-0.1, -2.5], (DOCS, 1))  # the same for every document: the prior, nothing else
    vanilla = scored(tmp_path / "vanilla", right_on(0.7, 1))
    prior = with_logliks(scored(tmp_path / "prior", right_on(0.92, 2)), flat)
    learner = with_logliks(scored(tmp_path / "learner", right_on(0.92, 2)), learned)
    rows = [row("vanilla", "", vanilla)]
    for name, folder in (("prior", prior), ("learner", learner)):
        r = row("single", name, folder)
        r.trained_on = ["t"]
        rows.append(r)
    gated, fine = verdicts(rows, claim("prior"), claim("learner"))
    assert gated.verdict.startswith("not testable: the treatment learned no discrimination (AUC 0.500")
    assert fine.verdict == "agrees" and fine.auc.startswith("0.9")


def test_an_undecided_positive_control_heads_the_claims_table(rows):
    from study.claims import claims_table, positive_control_note

    family = ClaimsFile.model_validate({"claims": [claim("same", positive_control=True), claim("strong")]})
    found = decide(family, rows, Bootstrap(1000, 0), lambda task, metric: metric, None)
    # Serial gatekeeping: no other claim is read while the positive control does not agree.
    assert found[0].verdict == "inconclusive"
    assert found[1].verdict == "not read: positive control same-vs-vanilla not shown"
    assert "would read 'agrees'" in found[1].note
    note = positive_control_note(found)
    assert note.startswith("**Positive control not shown: same-vs-vanilla is 'inconclusive'")
    assert claims_table(found, family).startswith(note)
    decided = ClaimsFile.model_validate({"claims": [claim("strong", positive_control=True)]})
    assert positive_control_note(decide(decided, rows, Bootstrap(1000, 0), lambda task, metric: metric, None)) == ""


def test_a_retention_claim_keeps_only_tasks_where_the_vanilla_model_clears_its_baseline(tmp_path):
    """A forgetting claim on a panel: task t, where vanilla is above chance, enters it; task u,
    where vanilla guesses, does not (nothing to lose). The gate is decided on one half of each
    task's documents and the claim read on the other, so selecting a task cannot bias its test."""
    def two_tasks(name: str, t_share: float, u_share: float, seed: int) -> Row:
        folders = {task: scored(tmp_path / f"{name}-{seed}" / task, right_on(share, seed + i), task=task)
                   for i, (task, share) in enumerate((("t", t_share), ("u", u_share)))}
        kind, run = ("vanilla", "") if name == "vanilla" else ("single", name)
        return Row("m", kind, run, "zero-shot", name, {task: {None: [f]} for task, f in folders.items()})

    panel = [two_tasks("vanilla", 0.75, 0.5, 10), two_tasks("forgot", 0.55, 0.5, 20)]
    gate = {"floor_gate": {"model": "m"}, "tasks": ["t", "u"]}
    (forgetting,) = verdicts(panel, claim("forgot", direction="decrease", **gate))
    assert forgetting.tasks == ["t"] and forgetting.verdict == "agrees"
    assert forgetting.documents < DOCS and "t clears" in forgetting.note and "u at floor" in forgetting.note
    assert "read on the other half" in forgetting.note

    guessing = [two_tasks("vanilla", 0.5, 0.5, 30), two_tasks("forgot", 0.5, 0.5, 40)]
    (untestable,) = verdicts(guessing, claim("forgot", direction="decrease", **gate))
    assert untestable.verdict == "not testable: m vanilla clears its trivial baseline on none of the tasks"
    assert untestable.tasks == [] and untestable.p is None


def bias_and_signal(signal: float, bias: float, seed: int) -> np.ndarray:
    """Per-label log-likelihoods: ``signal`` nats toward the gold label, noise, and ``bias`` nats
    against label 0 for every document (a label prior, not knowledge)."""
    noise = np.random.default_rng(seed).normal(0, 1, (DOCS, 2))
    return signal * np.eye(2)[GOLD] + noise - np.array([bias, 0.0])


def test_a_treatment_that_only_moves_the_threshold_fails_the_positive_control(tmp_path):
    """The planted label-bias fix: the treatment is the control with a constant added to label 0's
    log-likelihood. Its argmax accuracy rises a lot; it ranks no document differently (AUC gain
    exactly 0) and the batch-calibrated rule sees nothing. The rules before 2026-12-07 passed it."""
    control = bias_and_signal(0.8, 2.0, 1)
    fixed = control + np.array([2.0, 0.0])
    rows = [row("vanilla", "", scored(tmp_path / "vanilla", None, logliks=control)),
            row("single", "unbiased", scored(tmp_path / "unbiased", None, logliks=fixed))]
    family = ClaimsFile.model_validate({"claims": [claim("unbiased", positive_control=True)]})
    (found,) = decide(family, rows, Bootstrap(1000, 0), lambda task, metric: metric, None)
    assert found.effect > 0.3 and found.p < 1e-6  # the argmax gain is large and "significant"
    assert found.auc_gain.startswith("+0.000 [+0.000, +0.000]")
    assert found.verdict == "agrees only through a moved threshold (no calibrated or AUC gain)"
    (earlier,) = decide(family, rows, Bootstrap(1000, 0), lambda task, metric: metric, None, current=False)
    assert earlier.verdict == "agrees" and earlier.reading == found.verdict


def test_a_treatment_that_learned_passes_the_positive_control(tmp_path):
    """The planted real gain: more signal toward the gold label, the same bias."""
    rows = [row("vanilla", "", scored(tmp_path / "vanilla", None, logliks=bias_and_signal(0.8, 1.0, 1))),
            row("single", "learned", scored(tmp_path / "learned", None, logliks=bias_and_signal(2.5, 1.0, 2)))]
    family = ClaimsFile.model_validate({"claims": [claim("learned", positive_control=True)]})
    (found,) = decide(family, rows, Bootstrap(1000, 0), lambda task, metric: metric, None)
    assert found.verdict == "agrees"
    low = float(found.auc_gain.split("[")[1].split(",")[0])
    assert low > 0 and found.calibrated.startswith("+")


def test_a_study_with_development_rows_gates_on_them_and_reads_every_test_document(tmp_path):
    """With development rows (an eval set with `split: development`), the retention gate is
    decided on them: the vanilla model clears its baseline on task t's development rows and
    guesses on u's, whatever its test documents say, and the claim then reads all its test
    documents of t, not a half."""
    from study.claims import Development

    def two_tasks(root: Path, name: str, t_share: float, u_share: float, seed: int) -> Row:
        folders = {task: scored(root / f"{name}-{seed}" / task, right_on(share, seed + i), task=task)
                   for i, (task, share) in enumerate((("t", t_share), ("u", u_share)))}
        kind, run = ("vanilla", "") if name == "vanilla" else ("single", name)
        return Row("m", kind, run, "zero-shot", name, {task: {None: [f]} for task, f in folders.items()})

    # On the test documents the vanilla model is as good on u as on t; only the development rows differ.
    panel = [two_tasks(tmp_path / "test", "vanilla", 0.75, 0.75, 10),
             two_tasks(tmp_path / "test", "forgot", 0.55, 0.55, 20)]
    development = Development([two_tasks(tmp_path / "dev", "vanilla", 0.75, 0.5, 50)], Bootstrap(1000, 1))
    family = ClaimsFile.model_validate({"claims": [claim("forgot", direction="decrease", floor_gate={"model": "m"},
                                                         tasks=["t", "u"])]})
    (gated,) = decide(family, panel, Bootstrap(1000, 0), lambda task, metric: metric, None, development=development)
    assert gated.tasks == ["t"] and gated.documents == DOCS
    assert "on development rows, no test document" in gated.note and "u at floor" in gated.note
    assert "reads all its test documents" in gated.note
    (halves,) = decide(family, panel, Bootstrap(1000, 0), lambda task, metric: metric, None)
    assert halves.tasks == ["t", "u"] and halves.documents < DOCS  # without them: a half of the test documents


def test_a_threshold_free_retention_gate_keeps_a_task_the_vanilla_model_ranks_but_answers_with_one_label(tmp_path):
    """gate_rule: threshold_free. On task t the vanilla model ranks the documents well (AUC far
    above 0.5) but a label bias makes it answer one label almost everywhere, so its argmax score
    sits at the trivial answer's: the argmax gate says there is nothing to lose, the
    threshold-free gate (AUC above chance, or calibrated answers above the trivial ones) keeps
    it. On task u it guesses, and both gates leave it out."""
    from study.claims import Development

    def two_tasks(root: Path, name: str, t_logliks: np.ndarray, u_seed: int) -> Row:
        folders = {"t": scored(root / name / "t", None, task="t", logliks=t_logliks),
                   "u": scored(root / name / "u", None, task="u", logliks=bias_and_signal(0.0, 0.0, u_seed))}
        kind, run = ("vanilla", "") if name == "vanilla" else ("single", name)
        return Row("m", kind, run, "zero-shot", name, {task: {None: [f]} for task, f in folders.items()})

    biased = bias_and_signal(2.0, 4.0, 1)  # ranks well, answers label 1 nearly always
    assert np.mean(np.argmax(biased, axis=1) == 1) > 0.9
    panel = [two_tasks(tmp_path / "test", "vanilla", biased, 2), two_tasks(tmp_path / "test", "forgot",
                                                                            bias_and_signal(0.3, 4.0, 3), 4)]
    development = Development([two_tasks(tmp_path / "dev", "vanilla", bias_and_signal(2.0, 4.0, 5), 6)],
                              Bootstrap(1000, 1))

    def gated(rule: str):
        family = ClaimsFile.model_validate({"claims": [claim("forgot", direction="decrease", tasks=["t", "u"],
                                                             floor_gate={"model": "m"}, gate_rule=rule)]})
        return decide(family, panel, Bootstrap(1000, 0), lambda task, metric: metric, None,
                      development=development)[0]

    argmax, threshold_free = gated("argmax"), gated("threshold_free")
    assert argmax.tasks == [] and argmax.verdict.startswith("not testable: m vanilla clears its trivial baseline")
    assert threshold_free.tasks == ["t"] and "t clears AUC" in threshold_free.note and "u at floor" in threshold_free.note


def test_the_discrimination_gate_reads_the_treatments_development_rows(tmp_path):
    """A treatment that ranks its own task's development rows at chance is "learned nothing",
    even where its test rows look learned; where it has no development rows the test documents
    decide, and the figure says which rows it came from."""
    from study.claims import Development

    def trained(root: Path, logliks: np.ndarray) -> Row:
        r = row("single", "ft", scored(root, None, logliks=logliks))
        return Row(r.model, r.kind, r.run, r.setting, r.name, r.sources, trained_on=["t"])

    vanilla = row("vanilla", "", scored(tmp_path / "vanilla", None, logliks=bias_and_signal(0.3, 0.0, 1)))
    treatment = trained(tmp_path / "ft", bias_and_signal(2.5, 0.0, 2))
    chance = Development([trained(tmp_path / "dev-ft", bias_and_signal(0.0, 0.0, 3))], Bootstrap(1000, 1))
    family = ClaimsFile.model_validate({"claims": [claim("ft")]})
    (on_dev,) = decide(family, [vanilla, treatment], Bootstrap(1000, 0), lambda t, m: m, None, development=chance)
    assert on_dev.verdict.startswith("not testable: the treatment learned no discrimination")
    assert "(development rows)" in on_dev.auc
    (on_test,) = decide(family, [vanilla, treatment], Bootstrap(1000, 0), lambda t, m: m, None,
                        development=Development([], Bootstrap(1000, 1)))
    assert on_test.verdict == "agrees" and "(test documents: no development rows)" in on_test.auc


def test_a_positive_control_licenses_only_the_claims_of_its_arm(tmp_path):
    """Study B's Amazon control says nothing about its XSum runs: with arms, a control that is
    not shown holds back the claims of its own arm only; a claim of another arm is read under
    that arm's own control. A control or claim without an arm keeps the study-wide gate."""
    control = bias_and_signal(0.8, 2.0, 1)
    rows = [row("vanilla", "", scored(tmp_path / "vanilla", None, logliks=control)),
            row("single", "threshold", scored(tmp_path / "threshold", None, logliks=control + np.array([2.0, 0.0]))),
            row("single", "learned", scored(tmp_path / "learned", None, logliks=bias_and_signal(2.5, 2.0, 2)))]

    def family(*arms):
        pc_arm, pc2_arm, claim_arm = arms
        return ClaimsFile.model_validate({"claims": [
            {**claim("threshold", positive_control=True), "id": "pc-sentiment", **pc_arm},
            {**claim("learned", positive_control=True), "id": "pc-summary", **pc2_arm},
            {**claim("learned"), "id": "summary-claim", **claim_arm}]})

    scoped = decide(family({"arm": "sentiment"}, {"arm": "summary"}, {"arm": "summary"}), rows,
                    Bootstrap(1000, 0), lambda t, m: m, None)
    assert [v.verdict for v in scoped] == ["agrees only through a moved threshold (no calibrated or AUC gain)",
                                           "agrees", "agrees"]
    everywhere = decide(family({}, {"arm": "summary"}, {"arm": "summary"}), rows, Bootstrap(1000, 0),
                        lambda t, m: m, None)
    assert everywhere[2].verdict == "not read: positive control pc-sentiment not shown"
    unscoped_claim = decide(family({"arm": "sentiment"}, {"arm": "summary"}, {}), rows, Bootstrap(1000, 0),
                            lambda t, m: m, None)
    assert unscoped_claim[2].verdict == "not read: positive control pc-sentiment not shown"


def test_a_generation_positive_control_needs_no_threshold_free_gain(tmp_path):
    """A summary has no decision threshold to move: a ROUGE-L positive control that agrees is
    "agrees", where a classification control also needs a calibrated or AUC gain."""
    def summaries(folder: Path, mean: float, seed: int) -> Path:
        folder.mkdir(parents=True)
        (folder / f"results_{STAMP}.json").write_text(json.dumps({"results": {}}))
        values = np.clip(np.random.default_rng(seed).normal(mean, 0.05, DOCS), 0, 1)
        (folder / f"samples_t_{STAMP}.jsonl").write_text("".join(
            json.dumps({"doc_id": i, "doc": {"summary": "s"}, "filtered_resps": ["x"], "rougeL": float(v)}) + "\n"
            for i, v in enumerate(values)))
        return folder

    rows = [row("vanilla", "", summaries(tmp_path / "vanilla", 0.15, 1)),
            row("single", "xsum", summaries(tmp_path / "xsum", 0.25, 2))]
    family = ClaimsFile.model_validate({"claims": [
        {**claim("xsum", positive_control=True), "metric": "rougeL", "normalized": False}]})
    (found,) = decide(family, rows, Bootstrap(1000, 0), lambda task, metric: metric, None)
    assert found.verdict == "agrees" and not found.calibrated and not found.auc_gain
