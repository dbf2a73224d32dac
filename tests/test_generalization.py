"""The generalization suite of arXiv 2403.09162: tasks, prompts, data, metrics, views."""
from __future__ import annotations

import fnmatch
import json
import logging
import re
import shutil
from pathlib import Path

import pytest
from lm_eval.tasks import TaskManager

from evidence.records import RunRecord
from evidence.views import load_views, place_tasks, view_of, view_table
from fin_tasks import TASKS_DIR
from fin_tasks.common import generalization_data
from fin_tasks.common.data import TaskDataError
from fin_tasks.common.metrics import f1_macro, process_results_gen, process_results_mc
from fin_tasks.common.rouge import bleu, process_results_rouge, rouge
from fin_tasks.common.validate import validate_paths
from harness.evaluate import EvalRequest, run_eval
from tests.helpers.records import undeclared

SUITE = TASKS_DIR / "generalization"
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
# Every dataset the paper uses and ../shared/data holds, by task type.
DATASETS = {
    "summary": ["xsum", "xlsum", "cnn_dailymail", "peerread"],
    "question": ["socialiqa", "tweetqa", "sciq"],
    "sentiment": ["amazon", "amazon_food", "sst2", "yelp"],
    "paraphrase": ["paws", "qqp", "stsb"],
    "nli": ["mnli_m", "mnli_mm", "rte", "snli", "gptnli"],
}
GENERATION = {"summary", "question"}
PROMPT_KEY = {"summary": "summary", "question": "question", "sentiment": "sentiment",
              "paraphrase": "detection", "nli": "inference"}


@pytest.fixture(scope="module")
def manager() -> TaskManager:
    return TaskManager(include_path=[str(TASKS_DIR)], include_defaults=False)


def load(manager: TaskManager, *names: str) -> dict:
    return manager.load(list(names))["tasks"]


# --- tasks and groups ---------------------------------------------------------------------

def test_every_dataset_has_its_task_and_variants(manager):
    expected = set()
    for task_type, names in DATASETS.items():
        suffixes = ["", "_p2"] if task_type in GENERATION else ["", "_p2", "_mc", "_mc_p2"]
        expected |= {f"gen_{task_type}_{name}{s}" for name in names for s in suffixes}
    assert set(fnmatch.filter(manager.all_tasks, "gen_*")) == expected
    # 'gen_*' matches tasks only: no group or tag, so plain `lm_eval --tasks 'gen_*'` runs.
    assert not fnmatch.filter(manager.all_groups + manager.all_tags, "gen_*")


def test_every_task_and_group_validates_with_its_data():
    rows, errors = validate_paths([SUITE])
    assert errors == []
    assert len([r for r in rows if r["kind"] != "group"]) == 62


@pytest.mark.parametrize("group, members", [
    ("generalization_summary", {f"gen_summary_{d}" for d in DATASETS["summary"]}),
    ("generalization_nli_mc_p2", {f"gen_nli_{d}_mc_p2" for d in DATASETS["nli"]}),
    ("generalization_sentiment_p2", {f"gen_sentiment_{d}_p2" for d in DATASETS["sentiment"]}),
])
def test_groups_per_task_type_and_variant(manager, group, members):
    loaded = manager.load([group])
    assert set(loaded["group_map"][group]) == members


# --- prompts ------------------------------------------------------------------------------

def paper_prompts() -> list[dict]:
    path = SHARED / "paper2403_prompts" / "prompt_map.json"
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    return json.loads(path.read_text())


@pytest.mark.parametrize("task_type", list(DATASETS))
def test_both_prompt_templates_are_the_papers(manager, task_type):
    first, second = paper_prompts()
    name = DATASETS[task_type][0]
    tasks = load(manager, f"gen_{task_type}_{name}", f"gen_{task_type}_{name}_p2")
    for suffix, template in (("", first), ("_p2", second)):
        task = tasks[f"gen_{task_type}_{name}{suffix}"]
        doc = task.test_docs()[0]
        assert task.doc_to_text(doc) == template[PROMPT_KEY[task_type]].format_map(doc)


def test_few_shot_uses_the_papers_examples_in_order(manager):
    task = load(manager, "gen_sentiment_sst2")["gen_sentiment_sst2"]
    fewshot = [json.loads(line) for line in (SUITE / "sentiment/data/sst2/fewshot.jsonl").open()]
    doc = task.test_docs()[0]
    context = task.fewshot_context(doc, num_fewshot=2)
    first, second = (f"### Input:\n{r['input']}\n### Sentiment: {r['output']}" for r in fewshot[:2])
    assert context == f"{first}\n\n{second}\n\n{task.doc_to_text(doc)}"


def test_snli_borrows_multinli_examples_and_nli_p2_keeps_one_space(manager):
    task = load(manager, "gen_nli_snli_p2")["gen_nli_snli_p2"]
    mnli = json.loads((SUITE / "nli/data/mnli_m/fewshot.jsonl").open().readline())
    context = task.fewshot_context(task.test_docs()[0], num_fewshot=1)
    assert context.startswith(f"Consider the following texts: Text 1:{mnli['input_1']}")
    assert f"\nThe relation is {mnli['output']}\n\n" in context  # not "is  entailment"


def test_asking_for_more_examples_than_the_paper_ships_fails(manager):
    # TweetQA ships 4 examples, and the first is a test tweet (several questions per tweet), so
    # the leak-free sampler has 3 to give.
    task = load(manager, "gen_question_tweetqa")["gen_question_tweetqa"]
    assert len(task.fewshot_docs()) == 4
    with pytest.raises(ValueError, match="4 few-shot examples asked for, but the pool holds 3 rows that do not "
                                         "repeat a test document"):
        task.fewshot_context(task.test_docs()[0], num_fewshot=4)


# --- data ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, kept, dropped", [("mnli_m", 492, 8), ("mnli_mm", 484, 16), ("snli", 493, 7)])
def test_nli_rows_without_gold_label_are_dropped_and_counted(name, kept, dropped):
    splits, dropped_rows = generalization_data.read_splits(
        data_dir=f"data/{name}", labels=["entailment", "neutral", "contradiction"], drop_labels=["-"],
        config_source=str(SUITE / "nli" / f"gen_nli_{name}.yaml"))
    assert len(splits["test"]) == kept and dropped_rows == {"test": dropped}


def test_dropped_count_is_logged_when_lm_eval_loads_the_task(caplog):
    with caplog.at_level(logging.WARNING, logger="finharness"):
        TaskManager(include_path=[str(TASKS_DIR)], include_defaults=False).load(["gen_nli_mnli_mm"])
    assert "gen_nli_mnli_mm.yaml: dropped 16 of 500 test rows labelled '-'" in caplog.text


def test_a_label_outside_the_set_names_file_and_line(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.jsonl").write_text('{"input": "ok", "output": "positive"}\n'
                                                  '{"input": "meh", "output": "mixed"}\n')
    with pytest.raises(TaskDataError, match=r"test.jsonl:2: label 'mixed' is not in the task's label set"):
        generalization_data.load(labels=["negative", "positive"], config_source=str(tmp_path / "t.yaml"))


@pytest.mark.parametrize("task_type, name, sizes", [
    ("sentiment", "amazon", {2000: 2000, 4000: 4000, 6000: 5999}),
    ("paraphrase", "paws", {2000: 2000, 4000: 4000, 6000: 5986}),
    ("nli", "mnli_m", {2000: 2000, 4000: 4000, 6000: 6000}),
    ("question", "socialiqa", {2000: 2000, 4000: 4000, 6000: 6000}),
    ("summary", "xsum", {2000: 2000}),
])
def test_training_subsets_are_the_papers(task_type, name, sizes):
    splits, _ = generalization_data.read_splits(data_dir=f"data/{name}", config_source=str(SUITE / task_type / "x.yaml"))
    assert {int(k.split("_")[1]): len(v) for k, v in splits.items() if k.startswith("train_")} == sizes
    # Each paper file is exactly one of these splits (PAWS 2000 is a subset, not a prefix).
    folder = {"mnli_m": "mnli", "socialiqa": "socialiqa_qg"}.get(name, name)
    for size in sizes:
        prefix = {"mnli_m": "multinli", "socialiqa": "socialqa"}.get(name, name)
        paper = SHARED / folder / f"{prefix}_train_{size}.json"
        if not paper.is_file():
            pytest.skip(f"{paper} is not here")
        strip = lambda r: json.dumps({k: v for k, v in r.items() if k not in ("id", "train_subset")}, sort_keys=True)  # noqa: E731
        ours = {strip(r) for r in splits[f"train_{size}"]}
        assert ours == {strip(r) for r in json.loads(paper.read_text())}


def test_heldout_split_is_the_training_rows_a_subset_leaves_out():
    # A development set for runs trained on train_2000: none of its rows are in train_2000 or test.
    splits, _ = generalization_data.read_splits(data_dir="data/amazon", config_source=str(SUITE / "sentiment/x.yaml"))
    key = lambda r: r["input"]  # noqa: E731
    heldout = {key(r) for r in splits["heldout_2000"]}
    assert len(splits["heldout_2000"]) == 5999 - 2000 and len(splits["heldout_4000"]) == 5999 - 4000
    assert not heldout & {key(r) for r in splits["train_2000"]} and not heldout & {key(r) for r in splits["test"]}
    assert "heldout_6000" not in splits  # nothing is left out of the largest subset


# --- metrics on hand-made outputs -----------------------------------------------------------

def test_rouge_on_hand_made_outputs():
    # Reference 6 tokens, prediction 6 ("cats" stems to "cat"); 5 unigrams and 3 of 5 bigrams shared.
    scores = rouge("The cat sat on the mat.", "the cats sat on a mat")
    assert scores == pytest.approx({"rouge1": 5 / 6, "rouge2": 3 / 5, "rougeL": 5 / 6})
    assert rouge("A b c", "a  b\nc") == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert process_results_rouge({"output": "alpha beta"}, ["gamma delta"]) == {
        "rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0, "bleu": 0.0}


def test_bleu_on_hand_made_outputs():
    assert bleu("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    # One word of six substituted: sacrebleu's own sentence BLEU (53.7), on a 0-1 scale.
    import sacrebleu

    assert bleu("the cat sat on the mat", "the cat sat on a mat") == pytest.approx(
        sacrebleu.sentence_bleu("the cat sat on a mat", ["the cat sat on the mat"]).score / 100)
    assert 0.5 < bleu("the cat sat on the mat", "the cat sat on a mat") < 0.6
    assert bleu("alpha beta gamma", "delta") == pytest.approx(0.0, abs=1e-3)


def test_classification_scores_on_hand_made_outputs():
    doc = {"choices": ["entailment", "neutral", "contradiction"], "gold": 2}
    assert process_results_gen(doc, ["Contradiction. Not neutral"])["acc"] == 1.0
    assert process_results_gen(doc, ["I think so"])["missing"] == 1.0
    assert process_results_mc(doc, [(-3.0, False), (-2.0, False), (-1.0, False)])["acc"] == 1.0
    # gold 0,0,1,1 predicted 0,1,1,1: F1 class0 = 2/3, class1 = 4/5, macro = 11/15.
    assert f1_macro([(0, 0), (0, 1), (1, 1), (1, 1)]) == pytest.approx(11 / 15)


# --- end to end on a tiny random model -------------------------------------------------------

def test_tiny_model_runs_a_generation_and_a_classification_task(tiny_checkpoint, tmp_path):
    outcome = run_eval(EvalRequest(
        model=str(tiny_checkpoint), tasks=["gen_summary_xsum", "gen_sentiment_sst2", "gen_sentiment_sst2_mc"],
        limit=3, batch_size=3, output_path=tmp_path, num_fewshot=1))
    scores = outcome.results["results"]
    record = outcome.results["finharness"]
    assert {"generation_baselines", "fewshot_pool_skipped"} <= set(record) and undeclared(record, RunRecord) == []
    for metric in ("rouge1", "rouge2", "rougeL", "bleu"):
        assert 0.0 <= scores["gen_summary_xsum"][f"{metric},none"] <= 1.0
    for task in ("gen_sentiment_sst2", "gen_sentiment_sst2_mc"):
        assert 0.0 <= scores[task]["acc,none"] <= 1.0 and 0.0 <= scores[task]["f1_macro,none"] <= 1.0
    # The corpus ROUGE is the mean of the logged per-document scores.
    [path] = tmp_path.rglob("samples_gen_summary_xsum_20*.jsonl")
    samples = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(samples) == 3
    # --num_fewshot reaches the suite's tasks: the paper's first in-context example leads every prompt.
    first_example = json.loads((SUITE / "summary/data/xsum/fewshot.jsonl").open().readline())
    for s in samples:
        assert s["arguments"]["gen_args_0"]["arg_0"].startswith(f"### Input:\n{first_example['input']}")
        assert s["rougeL"] == pytest.approx(rouge(s["doc"]["output"], s["filtered_resps"][0])["rougeL"])
    assert scores["gen_summary_xsum"]["rougeL,none"] == pytest.approx(sum(s["rougeL"] for s in samples) / 3)


# --- views ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def places(manager):
    return place_tasks(load_views(), manager.task_index)


@pytest.mark.parametrize("task, view", [
    ("gen_sentiment_amazon", "in_domain"),
    ("gen_sentiment_amazon_mc_p2", "in_domain"),  # same data, other prompt and scoring
    ("gen_sentiment_yelp", "out_of_domain"),
    ("gen_sentiment_sst2_mc", "out_of_domain"),
    ("gen_nli_rte", "cross_task"),
    ("gen_summary_xsum_p2", "cross_task"),
    ("fin_fpb", None),
])
def test_views_of_a_model_fine_tuned_on_amazon(places, task, view):
    assert view_of(task, ["gen_sentiment_amazon"], places) == view


def test_view_table_averages_each_types_metric(places):
    scores = {
        "gen_sentiment_amazon": {"acc,none": 0.9}, "gen_sentiment_yelp": {"acc,none": 0.8},
        "gen_sentiment_sst2": {"acc,none": 0.6}, "gen_nli_rte": {"acc,none": 0.5},
        "gen_summary_xsum": {"rougeL,none": 0.2, "acc,none": 0.99}, "fin_fpb": {"acc,none": 0.1},
    }
    rows = view_table(scores, ["gen_sentiment_amazon"], places, load_views())
    assert rows == [
        {"task_type": "nli", "view": "cross_task", "metric": "acc", "tasks": 1, "mean": 0.5},
        {"task_type": "sentiment", "view": "in_domain", "metric": "acc", "tasks": 1, "mean": 0.9},
        {"task_type": "sentiment", "view": "out_of_domain", "metric": "acc", "tasks": 2, "mean": pytest.approx(0.7)},
        {"task_type": "summary", "view": "cross_task", "metric": "rougeL", "tasks": 1, "mean": 0.2},
    ]


def test_a_views_file_whose_train_task_is_not_in_its_groups_is_refused(tmp_path, manager):
    bad = tmp_path / "views.yaml"
    bad.write_text("task_types:\n  nli: {train_task: gen_sentiment_amazon, metric: acc, groups: [generalization_nli]}\n")
    with pytest.raises(ValueError, match="task_types.nli.train_task: 'gen_sentiment_amazon' is not in its groups"):
        place_tasks(load_views(bad), manager.task_index)


# --- extensibility: docs/tasks.md's drop-in example ------------------------------------------

def readme_drop_in() -> tuple[str, str]:
    """The file name and YAML of docs/tasks.md's worked example (so the docs cannot rot)."""
    text = (REPO / "docs" / "tasks.md").read_text()
    block = re.search(r"<!-- drop-in example -->\s*```yaml\n(.*?)```", text, re.S).group(1)
    name = re.match(r"# (\S+\.yaml)\n", block).group(1)
    return name, block


def test_a_dropped_in_yaml_joins_its_group_and_views(tmp_path):
    suite = tmp_path / "generalization"
    shutil.copytree(SUITE, suite, ignore=shutil.ignore_patterns("train.jsonl"))
    name, block = readme_drop_in()
    target = suite / Path(name).relative_to("fin_tasks/tasks/generalization")
    target.write_text(block)
    data = target.parent / "data" / "imdb"
    data.mkdir()
    (data / "test.jsonl").write_text(
        '{"input": "A gripping, beautifully shot film.", "output": "positive"}\n'
        '{"input": "Two hours I will never get back.", "output": "negative"}\n')
    rows, errors = validate_paths([target])
    assert errors and "names split 'fewshot', which the data does not have" in errors[0]
    (data / "fewshot.jsonl").write_text('{"input": "Loved every minute.", "output": "positive"}\n')

    rows, errors = validate_paths([target])
    assert errors == [] and rows[0]["splits"] == {"test": 2, "fewshot": 1}
    manager = TaskManager(include_path=[str(suite)], include_defaults=False)
    assert "gen_sentiment_imdb" in manager.load(["generalization_sentiment"])["group_map"]["generalization_sentiment"]
    assert "gen_sentiment_imdb" in fnmatch.filter(manager.all_tasks, "gen_*")
    places = place_tasks(load_views(), manager.task_index)
    assert view_of("gen_sentiment_imdb", ["gen_sentiment_amazon"], places) == "out_of_domain"
    assert view_of("gen_sentiment_imdb", ["gen_nli_mnli_m"], places) == "cross_task"
    task = manager.load(["gen_sentiment_imdb"])["tasks"]["gen_sentiment_imdb"]
    assert task.doc_to_text(task.test_docs()[1]) == "### Input:\nTwo hours I will never get back.\n### Sentiment:"


def test_views_cli_turns_a_results_file_into_the_matrix(tmp_path, capsys):
    from finharness.main import main

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"results": {
        "gen_nli_mnli_m": {"acc,none": 0.75}, "gen_nli_rte": {"acc,none": 0.5}, "gen_nli_snli": {"acc,none": 0.25},
        "gen_paraphrase_qqp": {"acc,none": 0.6}}}))
    assert main(["views", "--trained_on", "gen_nli_mnli_m", "--results", str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.search(r"\| nli +\| in_domain +\| acc +\| +1 \| 0\.7500 \|", "\n".join(lines))
    assert re.search(r"\| nli +\| out_of_domain +\| acc +\| +2 \| 0\.3750 \|", "\n".join(lines))
    assert re.search(r"\| paraphrase +\| cross_task +\| acc +\| +1 \| 0\.6000 \|", "\n".join(lines))


# --- training on the paper's subsets ---------------------------------------------------------

def test_a_recipe_trains_on_the_papers_2000_example_subset(tiny_checkpoint):
    from transformers import AutoTokenizer

    from training.examples import build_examples
    from training.recipe import load_recipe

    recipe = load_recipe(REPO / "recipes/training/gen_sentiment_amazon_2k.yaml")
    assert [(t.name, t.split) for t in recipe.tasks] == [("gen_sentiment_amazon", "train_2000")]
    examples = build_examples(recipe, AutoTokenizer.from_pretrained(tiny_checkpoint))
    # The paper's 2,000, less the rows that repeat a test document (leak-free by default).
    assert examples.skipped == {"gen_sentiment_amazon": 2} and len(examples) == 1998
    rows = [json.loads(line) for line in (SUITE / "sentiment/data/amazon/train.jsonl").open()]
    subset = [r for r in rows if r["train_subset"] <= 2000]
    ex = examples[7]
    assert ex.prompt == f"### Input:\n{subset[ex.doc_index]['input']}\n### Sentiment:"
    assert ex.completion == f" {subset[ex.doc_index]['output']}<|endoftext|>"


def test_a_split_the_task_lacks_is_named(tiny_checkpoint):
    from transformers import AutoTokenizer

    from training.examples import build_examples
    from training.recipe import RecipeError, parse_recipe

    recipe = parse_recipe({"name": "x", "base_model": str(tiny_checkpoint),
                           "tasks": [{"name": "gen_summary_xsum", "split": "train_4000"}]})
    with pytest.raises(RecipeError, match=r"gen_summary_xsum has no split 'train_4000' \(has: test, fewshot, train, train_2000\)"):
        build_examples(recipe, AutoTokenizer.from_pretrained(tiny_checkpoint))
