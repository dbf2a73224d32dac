"""Could the model have seen this test item? Lineage fingerprints, overlap flags, clean-subset
scores and leak-free sampling, on a scratch task whose overlaps are known by construction."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from evidence.contamination import clean_score, folder_report, suite_overlap
from evidence.records import RunRecord
from fin_tasks import TASKS_DIR
from finharness.main import main
from merges.recipe import parse_merge_recipe
from merges.run import merge_recipe
from plumbing.fingerprints import Fingerprint, normalize
from plumbing.folders import read_manifest
from plumbing.lineage import read_lineage
from tests.helpers.records import undeclared
from training.recipe import parse_recipe
from training.run import train_recipe

TASK = "fin_leaky_tone"
WORDS = ("revenue margin guidance cash demand supply cost price dividend debt growth loss profit share "
         "market quarter outlook order backlog tariff currency inventory capital rate bond yield credit "
         "asset equity fund merger deal plant region segment brand client contract license patent").split()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "."


@pytest.fixture(scope="module")
def leaky_task(tmp_path_factory) -> Path:
    """30 test sentences; the train split repeats 10 of them (one in other case and punctuation)."""
    rng = random.Random(3)
    root = tmp_path_factory.mktemp("leaky")
    folder = root / TASK
    (folder / "data").mkdir(parents=True)
    shutil.copy(Path(TASKS_DIR) / "_multiple_choice_yaml", folder)
    (folder / f"{TASK}.yaml").write_text(
        f"include: _multiple_choice_yaml\ntask: {TASK}\ntag: [finharness_unseen_members]\n"
        "dataset_kwargs:\n  labels: &labels [negative, positive]\ndoc_to_choice: *labels\n"
        'doc_to_text: "Tone?\\nText: {{text}}\\nAnswer:"\n')
    test = [{"id": f"t{i}", "text": sentence(rng), "label": rng.choice(["negative", "positive"])} for i in range(30)]
    leaked = sorted(rng.sample(range(30), 10))
    train = [{"id": f"r{i}", "text": sentence(rng), "label": rng.choice(["negative", "positive"])} for i in range(30)]
    for j, i in enumerate(leaked):
        text = test[i]["text"]
        if j == 0:  # a near-duplicate: only case, punctuation and whitespace differ
            text = "  " + text.upper().replace(" ", " ,  ") + "!!"
        train.append({"id": f"leak{i}", "text": text, "label": test[i]["label"]})
    validation = [{"id": f"v{i}", "text": sentence(rng), "label": "positive"} for i in range(6)]
    validation.append({"id": "v-dup", "text": test[leaked[1]]["text"].lower(), "label": "negative"})
    for split, rows in (("test", test), ("train", train), ("validation", validation)):
        (folder / "data" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "leaked.json").write_text(json.dumps(leaked))
    return root


def recipe(base: Path, out: Path, name: str, **extra) -> dict:
    return {"name": name, "base_model": str(base), "output_dir": str(out),
            "tasks": [{"name": TASK}], "include_paths": [], "lora": {"r": 4, "alpha": 8},
            "training": {"lr": 1e-3, "epochs": 1, "batch_size": 8, "warmup_ratio": 0.0}, **extra}


@pytest.fixture(scope="module")
def runs(leaky_task, tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("leak-runs")
    include = [str(leaky_task)]
    leaky = train_recipe(parse_recipe(recipe(tiny_checkpoint, out, "leaky", leak_free=False)), include_paths=include)
    clean = train_recipe(parse_recipe(recipe(tiny_checkpoint, out, "clean")), include_paths=include)
    [merged] = merge_recipe(parse_merge_recipe({
        "name": "merged", "method": "task_arithmetic", "base_model": str(tiny_checkpoint), "output_dir": str(out),
        "models": [{"model": str(leaky), "weight": 0.5}]}))
    return {"leaky": leaky, "clean": clean, "merged": merged}


def evaluate(model: Path, include: Path, out: Path) -> Path:
    assert main(["eval", "-m", str(model), "--include_path", str(include), "-t", TASK,
                 "--chat_template", "off", "-o", str(out)]) == 0
    return out


# --- fingerprints ------------------------------------------------------------------------

def test_near_duplicates_are_caught_and_a_shared_5_gram_is_not_at_n_8():
    seen = Fingerprint.of(["Gold prices rose sharply on Monday as the dollar weakened against the euro."])
    assert normalize("  GOLD prices, rose -- sharply!") == "gold prices rose sharply"
    flags = seen.overlaps([
        "gold PRICES rose sharply on monday, as the Dollar weakened against the euro",  # case and punctuation
        "Analysts said the dollar weakened against the euro after the vote.",  # shares a 5-gram only
        "Oil rose sharply on Monday as the dollar weakened against the yen today.",  # shares an 8-gram
    ], n=8)
    assert flags.tolist() == [True, False, True]


# --- lineage -----------------------------------------------------------------------------

def test_a_checkpoint_without_a_record_reads_unknown_never_clean(tiny_checkpoint, tmp_path):
    lineage = read_lineage(tiny_checkpoint)
    assert lineage.status == "unknown" and lineage.fingerprint is None
    assert "no lineage record" in lineage.describe()
    assert read_lineage(tmp_path / "nowhere").status == "unknown"


def test_a_run_trained_on_10_test_sentences_has_exactly_those_flagged(runs, leaky_task, tmp_path):
    leaked = json.loads((leaky_task / "leaked.json").read_text())
    record = read_manifest(runs["leaky"]).data["lineage"]
    assert record["status"] == "known" and record["tasks"][TASK]["documents"] == 40
    out = evaluate(runs["leaky"], leaky_task, tmp_path / "leaky")
    lineage, reports = folder_report(out)
    report = reports[TASK]
    assert lineage.status == "known"
    assert report.flagged["lineage"] == leaked  # doc ids are test rows: exactly the ten
    assert report.contaminated == leaked
    written = json.loads(next(out.rglob("contamination.json")).read_text())
    assert written["tasks"][TASK]["flagged"]["lineage"] == leaked
    # The clean score is the score of the other twenty documents.
    rows = [json.loads(line) for line in next(out.rglob(f"samples_{TASK}_*.jsonl")).read_text().splitlines()]
    clean_acc = np.mean([r["acc"] for r in rows if r["doc_id"] not in leaked])
    acc = next(s for s in report.scores if s.metric == "acc")
    assert acc.clean == pytest.approx(clean_acc) and acc.interval[0] <= acc.difference <= acc.interval[1]
    # finharness eval wrote the same figures into the results, since the lineage is known.
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    assert results["finharness"]["contamination"][TASK]["flagged"]["lineage"] == leaked
    assert undeclared(results["finharness"], RunRecord) == []  # lineage and contamination included


def test_a_merge_inherits_its_inputs_lineage(runs, leaky_task, tiny_checkpoint, tmp_path):
    leaked = json.loads((leaky_task / "leaked.json").read_text())
    merged = read_lineage(runs["merged"])
    assert merged.status == "known"
    # The base it adds the task vector back onto has no record, and needs none: the run's own base.
    assert read_manifest(runs["merged"]).data["lineage"]["inputs"] == {
        str(tiny_checkpoint): "pretrained base", str(runs["leaky"]): "known"}
    _, reports = folder_report(evaluate(runs["merged"], leaky_task, tmp_path / "merged"))
    assert reports[TASK].flagged["lineage"] == leaked


def test_a_merge_with_an_input_of_unknown_lineage_is_unknown(runs, tiny_checkpoint, tmp_path):
    from tests.helpers.checkpoints import perturbed_copy

    stranger = perturbed_copy(tiny_checkpoint, tmp_path / "stranger", seed=9)
    [merged] = merge_recipe(parse_merge_recipe({
        "name": "mixed", "method": "task_arithmetic", "base_model": str(tiny_checkpoint),
        "output_dir": str(tmp_path), "models": [{"model": str(runs["leaky"]), "weight": 0.5},
                                                {"model": str(stranger), "weight": 0.5}]}))
    lineage = read_lineage(merged)
    assert lineage.status == "unknown" and str(stranger) in lineage.why


def test_a_run_fine_tuned_on_top_of_another_keeps_what_the_first_saw(runs, leaky_task, tmp_path):
    """Sequential fine-tuning: a leak-free run on top of the leaky one has seen the leaked test
    sentences through its base, and its lineage says so."""
    leaked = json.loads((leaky_task / "leaked.json").read_text())
    after = train_recipe(parse_recipe(recipe(runs["leaky"], tmp_path / "runs", "after-leaky")),
                         include_paths=[str(leaky_task)])
    record = read_manifest(after).data["lineage"]
    assert record["status"] == "known" and record["base_checkpoint"] == str(runs["leaky"])
    assert record["tasks"][TASK]["skipped_overlapping_test"] == 10  # its own rows are leak-free
    assert record["base_lineage"]["tasks"] == read_manifest(runs["leaky"]).data["lineage"]["tasks"]
    _, reports = folder_report(evaluate(after, leaky_task, tmp_path / "after"))
    assert reports[TASK].flagged["lineage"] == leaked


def test_leak_free_training_skips_the_test_sentences_and_says_so(runs, leaky_task, tmp_path):
    record = read_manifest(runs["clean"]).data["lineage"]
    assert record["leak_free"] is True
    assert record["tasks"][TASK] == {"split": "train", "documents": 30, "demonstrations": 0,
                                     "skipped_overlapping_test": 10}
    _, reports = folder_report(evaluate(runs["clean"], leaky_task, tmp_path / "clean"))
    assert reports[TASK].flagged["lineage"] == []


def test_fticl_demonstrations_are_part_of_the_lineage(leaky_task, tiny_checkpoint, tmp_path):
    from training.examples import build_examples, load_tasks
    from transformers import AutoTokenizer

    spec = parse_recipe(recipe(tiny_checkpoint, tmp_path, "fticl", leak_free=False, fticl={"k": 3},
                               tasks=[{"name": TASK, "samples": 2}]))
    spec = spec.model_copy(update={"include_paths": [str(leaky_task)]})
    examples = build_examples(spec, AutoTokenizer.from_pretrained(tiny_checkpoint),
                              load_tasks([TASK], include_paths=spec.include_paths))
    run = train_recipe(spec)
    lineage = read_lineage(run)
    demos = [t for ex in examples for t in ex.texts[1:]]
    assert len(demos) == 6 and lineage.fingerprint.overlaps(demos).all()
    assert len(lineage.fingerprint) == len({normalize(t) for ex in examples for t in ex.texts})


# --- few-shot sampling -------------------------------------------------------------------

def test_the_few_shot_sampler_never_shows_the_query_or_its_duplicate(leaky_task):
    from fin_tasks.index import task_manager

    task = task_manager([str(leaky_task)]).load([TASK])["tasks"][TASK]
    leaked = json.loads((leaky_task / "leaked.json").read_text())
    query = task.test_docs()[leaked[1]]  # the validation split holds it in lower case
    pool = task.sampler.fewshot_docs()
    assert len(pool) == 6 and all(normalize(d["text"]) != normalize(query["text"]) for d in pool)
    for seed in range(20):
        task.sampler.set_rnd(seed)
        shown = task.sampler.sample(6, eval_doc=None)
        assert all(not d["overlaps_test"] for d in shown)
    with pytest.raises(ValueError, match="7 few-shot examples asked for, but the pool holds 6"):
        task.sampler.sample(7)
    # Where lm-eval passes the query (few-shot split = test split), the query itself is dropped too.
    from fin_tasks.common.fewshot import LeakFreeSampler

    sampler = LeakFreeSampler(list(task.test_docs()), rnd=0)
    for _ in range(20):
        assert query not in sampler.sample(29, eval_doc=query)


# --- clean-subset arithmetic and the whole suite -----------------------------------------

def test_clean_score_interval_is_paired_and_recomputes_corpus_metrics():
    values = [(0, 0), (1, 1), (0, 1), (1, 1), (0, 0), (1, 0)] * 5
    clean = np.array([True, True, False, True, True, False] * 5)
    from fin_tasks.common.metrics import f1_macro

    found = clean_score(values, clean, "f1_macro", "x")
    assert found.full == pytest.approx(f1_macro(values))
    assert found.clean == pytest.approx(f1_macro([v for v, c in zip(values, clean) if c])) == pytest.approx(1.0)
    assert found.interval[0] <= found.difference <= found.interval[1]


def test_the_suite_table_finds_the_packaged_overlaps():
    rows = {r["data"]: r for r in suite_overlap()}
    # Counted independently: Headlines' test sentences whose normalized text is in its train split.
    from fin_tasks.common.decontamination import read_texts

    folder = Path(TASKS_DIR) / "headlines" / "data"
    train = {normalize(t) for t in read_texts(folder / "train.jsonl")}
    expected = sum(normalize(t) in train for t in read_texts(folder / "test.jsonl"))
    assert rows["headlines"]["in train (text)"] == expected == 181
    assert rows["headlines"]["in train (8-gram)"] >= expected


# --- the board ---------------------------------------------------------------------------

def test_the_board_keeps_each_entrys_contamination_and_ranks_on_clean_subsets(runs, leaky_task, tiny_checkpoint,
                                                                              tmp_path):
    from leaderboard.store import Board
    from leaderboard.submission import Submission
    from leaderboard.submit import submit
    from leaderboard.table import board_rows, sort_rows

    board = Board(tmp_path / "board.sqlite")
    common = dict(weight_type="original", precision="float32", chat_template=False, tasks=[TASK],
                  include_paths=[str(leaky_task)])
    leaky = submit(Submission(model="leaky", model_type="fine-tuned", checkpoint=str(runs["leaky"]), **common), board)
    base = submit(Submission(model="base", model_type="pretrained", checkpoint=str(tiny_checkpoint), **common), board)
    record = {e.id: e.metadata["contamination"] for e in board.entries()}
    assert record[leaky]["lineage"] == "known" and record[leaky]["tasks"][TASK]["flagged"]["lineage"] == 10
    assert record[base]["lineage"] == "unknown" and "lineage" not in record[base]["tasks"][TASK]["flagged"]
    # Both may have seen the 10 (the task's train split holds them); 20 clean documents are scored.
    assert record[leaky]["tasks"][TASK]["clean_docs"] == 20 and record[leaky]["tasks"][TASK]["share"] == pytest.approx(1 / 3)
    rows, _ = board_rows(board.entries())
    by_id = {r["id"]: r for r in rows}
    assert by_id[leaky]["contaminated"] == f"{TASK} 33%" and by_id[leaky]["lineage"] == "known"
    assert by_id[base]["lineage"] == "unknown"
    assert all(isinstance(r["unseen_clean_norm"], float) for r in rows)
    ranked = sort_rows(rows, "unseen_clean_norm")
    assert ranked[0]["unseen_clean_norm"] >= ranked[1]["unseen_clean_norm"]


# --- a lineage is data, pinned to what was scored (issue 48: C1, C3, C4, C5) ----------------

def test_a_lineage_file_of_the_wrong_shape_is_named_not_a_numpy_error(runs, tmp_path):
    import numpy as np

    run = shutil.copytree(runs["leaky"], tmp_path / "run")
    np.savez_compressed(run / "lineage.npz", texts=np.arange(12, dtype=np.uint64).reshape(3, 4))
    lineage = read_lineage(run)
    assert lineage.status == "unknown" and "lineage.npz: not a finharness lineage file (texts is not a sorted list" \
        in lineage.why


def test_a_lineage_record_naming_a_file_outside_its_folder_reads_unknown(runs, tmp_path):
    from plumbing.folders import MANIFEST

    run = shutil.copytree(runs["leaky"], tmp_path / "run")
    shutil.copy(run / "lineage.npz", tmp_path / "elsewhere.npz")
    manifest = json.loads((run / MANIFEST).read_text())
    manifest["data"]["lineage"]["file"] = "../elsewhere.npz"
    (run / MANIFEST).write_text(json.dumps(manifest))
    lineage = read_lineage(run)
    assert lineage.status == "unknown" and "names '../elsewhere.npz', outside its folder" in lineage.why


def test_contamination_reads_the_lineage_the_scoring_read_not_whatever_sits_there_now(runs, leaky_task, tmp_path,
                                                                                       capsys):
    """C4/C5: after scoring, the run folder's lineage file is swapped for another run's: the
    report must not lend the results the other run's training texts."""
    from evidence.contamination import folder_report

    run = shutil.copytree(runs["leaky"], tmp_path / "run")
    scored = evaluate(run, leaky_task, tmp_path / "scored")
    before, _ = folder_report(scored)
    assert before.status == "known"
    shutil.copy(runs["clean"] / "lineage.npz", run / "lineage.npz")
    after, reports = folder_report(scored)
    assert after.status == "unknown" and "its lineage file changed since these results were scored" in after.why
