"""Paired bootstrap intervals and permutation tests, checked against hand computations."""
import json
import re

import pytest

from evidence.stats import align, paired_bootstrap, paired_permutation_test, read_samples
from fin_tasks.common.metrics import f1_macro


def test_permutation_p_value_by_hand():
    # 4 docs, all won by a: 2 of the 16 swap patterns are as extreme (none, all).
    assert paired_permutation_test([1, 1, 1, 1], [0, 0, 0, 0]) == pytest.approx(2 / 16)
    # Docs 1 and 3 are ties, so only docs 0 and 2 matter: 2 of their 4 patterns reach |0.5|.
    assert paired_permutation_test([1, 0, 1, 1], [0, 0, 0, 1]) == pytest.approx(0.5)
    assert paired_permutation_test([1, 0, 1], [1, 0, 1]) == 1.0


def test_permutation_with_a_corpus_metric_by_hand():
    # a right on both docs (F1 1), b wrong on both (F1 0). Swapping one doc gives
    # gold (0,1) vs pred (1,1): F1 (0 + 2/3) / 2 = 1/3 for both sides, difference 0.
    a, b = [(0, 0), (1, 1)], [(0, 1), (1, 0)]
    assert f1_macro([(0, 1), (1, 1)]) == pytest.approx(1 / 3)
    assert paired_permutation_test(a, b, f1_macro) == pytest.approx(2 / 4)


def test_monte_carlo_p_value_is_small_for_a_clear_gap_and_seeded():
    a, b = [1] * 40, [0] * 40
    p = paired_permutation_test(a, b, resamples=999, seed=3)
    assert p == pytest.approx(1 / 1000)  # no random pattern reaches the observed gap
    noisy_a = [1, 0] * 20
    noisy_b = [0, 1] * 20
    assert paired_permutation_test(noisy_a, noisy_b, seed=1) == paired_permutation_test(noisy_a, noisy_b, seed=1)
    assert paired_permutation_test(noisy_a, noisy_b, seed=1) > 0.9  # equal means


def test_bootstrap_interval_by_hand():
    same = paired_bootstrap([0.2, 0.4, 0.9], [0.2, 0.4, 0.9])
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    shifted = paired_bootstrap([1.5, 2.5, 3.5], [0.5, 1.5, 2.5])  # every doc exactly 1 apart
    assert (shifted.estimate, shifted.low, shifted.high) == pytest.approx((1.0, 1.0, 1.0))
    # Two docs, differences 1 and 0: a resample has mean difference 0, 0.5 or 1 with
    # probabilities 1/4, 1/2, 1/4, so the 95% interval spans [0, 1].
    wide = paired_bootstrap([1, 0], [0, 0], resamples=4000, seed=0)
    assert wide.estimate == 0.5 and wide.low == 0.0 and wide.high == 1.0
    narrow = paired_bootstrap([1, 0] * 50, [0, 0] * 50, resamples=4000, seed=0)
    assert 0.35 < narrow.low < 0.5 < narrow.high < 0.65


def test_unpaired_inputs_are_refused():
    with pytest.raises(ValueError, match="same documents: 2 vs 3"):
        paired_bootstrap([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="at least one document"):
        paired_permutation_test([], [])


def test_per_sample_logs_are_aligned_by_document(tmp_path):
    def log(name, rows):
        path = tmp_path / name
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        return path

    a = read_samples(log("a.jsonl", [{"doc_id": 1, "acc": 1.0}, {"doc_id": 0, "acc": 0.0}]), "acc")
    b = read_samples(log("b.jsonl", [{"doc_id": 0, "acc": 1.0}, {"doc_id": 1, "acc": 1.0}]), "acc")
    assert align(a, b) == ([0.0, 1.0], [1.0, 1.0])
    pairs = read_samples(log("c.jsonl", [{"doc_id": 0, "f1_macro": [2, 1]}]), "f1_macro")
    assert pairs == {0: (2, 1)}
    c = read_samples(log("d.jsonl", [{"doc_id": 0, "acc": 1.0}, {"doc_id": 2, "acc": 1.0}]), "acc")
    with pytest.raises(ValueError, match=r"only in a: \[1\]; only in b: \[2\]"):
        align(a, c)
    with pytest.raises(ValueError, match=r"e.jsonl:1: not an lm-eval sample with 'acc'"):
        read_samples(log("e.jsonl", [{"doc_id": 0, "rouge1": 0.5}]), "acc")


def test_finharness_compare_reads_two_result_folders(tmp_path, capsys):
    from finharness.main import main

    for name, preds in (("a", [0, 1, 1, 0]), ("b", [1, 1, 0, 0])):
        folder = tmp_path / name / "model"
        folder.mkdir(parents=True)
        rows = [{"doc_id": i, "acc": float(p == g), "f1_macro": [g, p]} for i, (g, p) in enumerate(zip([0, 1, 1, 0], preds))]
        (folder / "samples_gen_nli_rte_2026-11-22T00-00-00.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "-t", "gen_nli_rte", "--metric", "f1_macro"]) == 0
    out = capsys.readouterr().out
    # a is right on all 4 docs (F1 1); b on docs 1 and 3 (gold 0,1,1,0 vs 1,1,0,0: F1 1/2).
    # Docs 1 and 3 are ties; swapping one of docs 0 and 2 makes both sides F1 11/15, so
    # 2 of the 4 patterns that matter reach the observed gap: p = 0.5.
    assert re.search(r"\| gen_nli_rte \| f1_macro \| +4 \| 1\.0000 \| 0\.5000 \| +0\.5000 \|.*\| +0\.5000 \|$", out, re.M)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "-t", "fin_fpb"]) == 2
    assert "no per-sample log of fin_fpb" in capsys.readouterr().err


def test_a_tasks_log_is_not_mistaken_for_its_variants(tmp_path):
    from evidence.result_files import samples_file

    (tmp_path / "samples_gen_nli_rte_2026-11-22T07-00-00.000001.jsonl").write_text("")
    # Sorts after the file above by name, but belongs to another task.
    (tmp_path / "samples_gen_nli_rte_mc_2026-11-22T08-00-00.000001.jsonl").write_text("")
    assert samples_file(tmp_path, "gen_nli_rte").name == "samples_gen_nli_rte_2026-11-22T07-00-00.000001.jsonl"
    assert samples_file(tmp_path, "gen_nli_rte_mc").name.startswith("samples_gen_nli_rte_mc_")


def test_the_seed_component_leaves_out_what_the_documents_already_hold():
    import numpy as np

    from evidence.stats import SeedScores, components, interaction, seed_component

    # Three seeds whose scores differ by 0.1 each: s^2 = 0.01, over 3 seeds.
    spread = np.array([0.4, 0.5, 0.6])
    total, parts = seed_component([SeedScores(spread)])
    assert total == pytest.approx(0.01 / 3) and parts == [(pytest.approx(0.01 / 3), 2)]
    # Each seed's own document variance exceeds the seed average's by (S - 1) / S of the
    # seed x document interaction, which the document component already holds.
    assert interaction([0.004, 0.004, 0.004], 0.004 - 0.003 * 2 / 3) == pytest.approx(0.003)
    total, _ = seed_component([SeedScores(spread, interaction=0.003)])
    assert total == pytest.approx((0.01 - 0.003) / 3)
    # A vanilla row (no seeds) adds nothing; one trained seed cannot be estimated and says so.
    lone = components(0.2, np.array([0.1, 0.3, 0.2, 0.2]), [SeedScores(np.array([0.2]))], docs=40)
    assert lone.seed_var == 0 and lone.unestimated == 1
    # Few seeds: Welch-Satterthwaite degrees of freedom near S - 1 when seeds dominate.
    seeds = components(0.5, np.full(1000, 0.5) + np.random.default_rng(0).normal(0, 1e-4, 1000),
                       [SeedScores(spread)], docs=40)
    assert 2 <= seeds.df < 2.1 and seeds.interval()[1] - seeds.interval()[0] > 2 * 4.0 * seeds.se * 0.99
