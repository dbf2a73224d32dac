"""--limit N scores a seeded slice stratified by gold label, the same one plain lm-eval scores
with --samples; never "the first N" unless asked."""
import json
import subprocess
import sys
from collections import Counter

import pytest

from fin_tasks.index import task_manager
from harness.slices import select, task_golds


@pytest.fixture(scope="module")
def fincausal_golds():
    task = task_manager().load(["fin_fincausal"])["tasks"]["fin_fincausal"]
    return task_golds(task)


def test_the_first_40_fincausal_documents_are_one_class_but_a_stratified_40_is_not(fincausal_golds):
    assert set(fincausal_golds[:40]) == {0}  # all `noise`: what a first-N slice scores
    chosen = select(fincausal_golds, 40)
    counts = Counter(fincausal_golds[i] for i in chosen)
    assert len(chosen) == 40 and set(counts) == {0, 1}
    share = sum(g == 1 for g in fincausal_golds) / len(fincausal_golds)
    assert counts[1] == max(1, round(40 * share))  # its share of the split (largest remainder)


def test_a_slice_keeps_the_label_prior_and_the_seed_decides_which_documents():
    golds = [0] * 60 + [1] * 30 + [2] * 10
    chosen = select(golds, 10, seed=7)
    assert Counter(golds[i] for i in chosen) == {0: 6, 1: 3, 2: 1}
    assert select(golds, 10, seed=7) == chosen and select(golds, 10, seed=8) != chosen
    # A label too rare for its share of N to round to a document gets none (the slice would
    # otherwise be nearly uniform); the old rule, kept for results drawn with it, forced one each.
    rare = [0] * 95 + [1] * 3 + [2] * 2
    assert {rare[i] for i in select(rare, 5, seed=7)} == {0}
    assert {rare[i] for i in select(rare, 5, seed=7, rule="floor")} == {0, 1, 2}
    assert select(golds, 5, method="first") == [0, 1, 2, 3, 4]
    assert len(set(select(golds, 0.1, method="random", seed=1))) == 10
    with pytest.raises(ValueError, match="--sample must be one of stratified, random, first, not 'top'"):
        select(golds, 5, method="top")


def test_a_finred_slice_keeps_its_majority_label_and_lists_the_labels_it_misses():
    from harness.slices import unsampled_labels

    task = task_manager().load(["fin_finred"])["tasks"]["fin_finred"]
    golds = task_golds(task)
    chosen = select(golds, 40)
    split_top, split_count = Counter(golds).most_common(1)[0]
    in_slice = Counter(golds[i] for i in chosen)
    # The split's majority label is (at least tied for) the slice's, at its share of the split.
    assert in_slice[split_top] == max(in_slice.values()) and abs(in_slice[split_top] / 40 - split_count / len(golds)) < 0.02
    missing = unsampled_labels(task, chosen)
    assert missing and len(missing) == len(set(golds)) - len({golds[i] for i in chosen})
    assert all(isinstance(label, str) and not label.isdigit() for label in missing)  # label words, not indices


@pytest.mark.slow
def test_finharness_eval_and_plain_lm_eval_score_the_same_documents(tiny_checkpoint, tmp_path):
    from finharness.main import main

    assert main(["eval", "-m", str(tiny_checkpoint), "-t", "fin_fincausal", "--limit", "6", "--chat_template", "off",
                 "--backend", "hf", "-o", str(tmp_path / "ours")]) == 0
    written = json.loads((tmp_path / "ours" / "samples.json").read_text())
    ours = [json.loads(line)["doc_id"] for line in next((tmp_path / "ours").rglob("samples_fin_fincausal_*.jsonl"))
            .read_text().splitlines()]
    assert sorted(ours) == written["fin_fincausal"] == select(
        task_golds(task_manager().load(["fin_fincausal"])["tasks"]["fin_fincausal"]), 6)
    plain = subprocess.run(
        [sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args", f"pretrained={tiny_checkpoint}",
         "--include_path", str(task_manager.__globals__["TASKS_DIR"]), "--tasks", "fin_fincausal",
         "--samples", str(tmp_path / "ours" / "samples.json"), "--device", "cpu", "--log_samples",
         "--output_path", str(tmp_path / "plain")],
        capture_output=True, text=True, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert plain.returncode == 0, plain.stderr[-2000:]
    theirs = [json.loads(line)["doc_id"] for line in next((tmp_path / "plain").rglob("samples_fin_fincausal_*.jsonl"))
              .read_text().splitlines()]
    assert sorted(theirs) == sorted(ours)


def test_development_rows_are_never_a_scored_test_document():
    """A study's gates read `split: development` rows. SST-2 has no validation split: its
    development rows are test-split documents outside every test slice the study scores (here
    at 100 and 50). Headlines has one: its validation rows that repeat no test sentence."""
    from fin_tasks.common.decontamination import query_text
    from harness.evaluate import EvalRequest, development_documents
    from harness.lm_eval_adapters import score_on_validation

    manager = task_manager()
    score_on_validation(manager, required=False)
    req = EvalRequest(model="m", limit=80, split="development", development_outside=(100, 50))
    chosen = development_documents(manager.load(["gen_sentiment_sst2_mc", "fin_headlines"])["tasks"], req)

    sst2 = manager.load(["gen_sentiment_sst2_mc"])["tasks"]["gen_sentiment_sst2_mc"]
    golds = task_golds(sst2)
    scored = set(select(golds, 100)) | set(select(golds, 50))
    assert len(chosen["gen_sentiment_sst2_mc"]) == 80 and not scored & set(chosen["gen_sentiment_sst2_mc"])
    shares = Counter(golds[i] for i in chosen["gen_sentiment_sst2_mc"])
    assert set(shares) == set(golds)  # stratified, as a test slice is

    headlines = manager.load(["fin_headlines"])["tasks"]["fin_headlines"]
    assert headlines.config.test_split == "validation"  # development reads the validation split
    rows = list(headlines.eval_docs)
    test = {query_text(d).strip().lower() for d in headlines.dataset["test"]}
    picked = [query_text(rows[i]).strip().lower() for i in chosen["fin_headlines"]]
    assert len(picked) == 80 and not test & set(picked)


def test_a_development_set_beside_unlimited_test_sets_is_refused_naming_the_task():
    from harness.evaluate import EvalRequest, development_documents
    from harness.lm_eval_adapters import score_on_validation

    manager = task_manager()
    score_on_validation(manager, required=False)
    req = EvalRequest(model="m", limit=10, split="development", development_outside=(None,))
    with pytest.raises(ValueError, match="gen_sentiment_sst2_mc has no validation split"):
        development_documents(manager.load(["gen_sentiment_sst2_mc"])["tasks"], req)
