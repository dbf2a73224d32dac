"""`finharness train` on a tiny random model: recipes, prompts, loss mask, resume, outputs."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from finharness.main import main
from plumbing.folders import read_manifest
from tests.helpers.checkpoints import build_tiny_checkpoint
from tests.helpers.train_runs import CHATML, kill_after_checkpoint, tiny_recipe
from training.encode import IGNORE, encode_example, encode_pair
from training.examples import build_examples
from training.recipe import RecipeError, load_recipe, parse_recipe
from training.run import train_recipe


@pytest.fixture(scope="module")
def trained(tiny_checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    return train_recipe(parse_recipe(tiny_recipe(tiny_checkpoint, out)))


# --- recipes -----------------------------------------------------------------------------

def test_recipe_errors_name_the_field(tmp_path, tiny_checkpoint):
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: x\nbase_model: {tiny_checkpoint}\ntasks: [{{name: fin_fpb}}]\ntraining: {{learning_rte: 0.1}}\n")
    with pytest.raises(RecipeError, match=r"bad.yaml: training.learning_rte: unknown key"):
        load_recipe(path)
    path.write_text("name: x\ntasks: [\n")
    with pytest.raises(RecipeError, match=r"bad.yaml:\d+: not valid YAML"):
        load_recipe(path)
    with pytest.raises(RecipeError, match="base_model: required key is missing"):
        parse_recipe({"name": "x", "tasks": [{"name": "fin_fpb"}]})
    with pytest.raises(RecipeError, match="embeddings or output layer"):
        parse_recipe(tiny_recipe(tiny_checkpoint, tmp_path, lora={"target_modules": ["q_proj", "lm_head"]}))


@pytest.mark.parametrize("change, message", [
    ({"tasks": [{"name": "fin_nope"}]}, "unknown task 'fin_nope'"),
    ({"tasks": [{"name": "finharness_seen"}]}, "is a group"),
    ({"tasks": [{"name": "fin_fiqa_sa", "samples": 5000}]},
     r"fin_fiqa_sa asks for 5000 samples but its training split has 7\d\d \(\d+ of its 750 rows overlap a test document; "
     r"leak_free: false keeps them\)"),
    ({"lora": {"target_modules": ["q_proj", "query_key_value"]}}, r"\['query_key_value'\] not in this model"),
    ({"prompt_format": "instruct"}, "has no chat template"),
])
def test_bad_recipes_fail_before_any_folder_is_written(tiny_checkpoint, tmp_path, change, message):
    with pytest.raises(RecipeError, match=message):
        train_recipe(parse_recipe(tiny_recipe(tiny_checkpoint, tmp_path, **change)))
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_recipe_errors(tmp_path, tiny_checkpoint, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text(f"name: x\nbase_model: {tiny_checkpoint}\ntasks: [{{name: fin_fpb, samples: 0}}]\n")
    assert main(["train", str(path)]) == 2
    assert "tasks.0.samples" in capsys.readouterr().err


# --- prompts and the loss mask -----------------------------------------------------------

def test_only_answer_tokens_carry_loss(tiny_checkpoint, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    recipe = parse_recipe(tiny_recipe(tiny_checkpoint, tmp_path, tasks=[{"name": "fin_fpb", "samples": 5}]))
    for ex in build_examples(recipe, tokenizer):
        assert ex.prompt.endswith("\nAnswer:") and ex.completion in {" negative<|endoftext|>", " neutral<|endoftext|>", " positive<|endoftext|>"}
        enc = encode_example(tokenizer, ex, max_length=1024)
        context_ids, answer_ids = encode_pair(tokenizer, ex.prompt, ex.completion)
        assert enc.input_ids == context_ids + answer_ids
        for position, (token, label) in enumerate(zip(enc.input_ids, enc.labels)):
            if position < len(context_ids):
                assert label == IGNORE, f"prompt token {position} carries loss"
            else:
                assert label == token
        assert tokenizer.decode(answer_ids) == ex.completion
        assert answer_ids[-1] == tokenizer.eos_token_id


def test_token_split_is_lm_evals_own(tiny_checkpoint):
    """What we train on is exactly the continuation lm-eval scores."""
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    lm = HFLM(pretrained=str(tiny_checkpoint), device="cpu", batch_size=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    for context, continuation in [("Text: Sales fell.\nAnswer:", " negative"), ("Answer: ", "positive"),
                                  ("<|endoftext|>Text: x\nAnswer:", " neutral")]:
        assert encode_pair(tokenizer, context, continuation) == lm._encode_pair(context, continuation)


def test_long_prompts_lose_their_start_not_the_answer(tiny_checkpoint, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    recipe = parse_recipe(tiny_recipe(tiny_checkpoint, tmp_path, tasks=[{"name": "fin_fpb", "samples": 1}]))
    [ex] = build_examples(recipe, tokenizer)
    enc = encode_example(tokenizer, ex, max_length=20)
    assert enc.truncated and len(enc.input_ids) == 20
    assert tokenizer.decode([t for t in enc.labels if t != IGNORE]) == ex.completion


def test_instruct_format_uses_the_chat_template(tmp_path):
    from transformers import AutoTokenizer

    chat_model = build_tiny_checkpoint(tmp_path / "chat", chat_template=CHATML)
    tokenizer = AutoTokenizer.from_pretrained(chat_model)
    recipe = parse_recipe(tiny_recipe(chat_model, tmp_path, prompt_format="instruct",
                                      tasks=[{"name": "fin_fomc", "samples": 3}]))
    for ex in build_examples(recipe, tokenizer):
        assert ex.prompt.startswith("<|im_start|>user\nExamine the excerpt")
        assert ex.prompt.endswith("Answer:<|im_end|>\n<|im_start|>assistant\n")
        assert ex.completion in {f"{label}<|im_end|>\n" for label in ("dovish", "hawkish", "neutral")}


def test_fticl_prompts_hold_k_demonstrations_never_the_example(tiny_checkpoint, tmp_path):
    from transformers import AutoTokenizer

    from training.examples import load_tasks

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    k = 3
    recipe = parse_recipe(tiny_recipe(tiny_checkpoint, tmp_path, tasks=[{"name": "fin_fpb", "samples": 40}],
                                      fticl={"k": k, "seed": 7}))
    docs = load_tasks(["fin_fpb"])["fin_fpb"].training_docs()
    examples = build_examples(recipe, tokenizer)
    for ex in examples:
        assert len(ex.demos) == len(set(ex.demos)) == k and ex.doc_index not in ex.demos
        assert ex.prompt.count("Analyze the sentiment") == k + 1
        blocks = ex.prompt.split("\n\n")
        assert len(blocks) == k + 1
        for block, row in zip(blocks, ex.demos):
            assert docs[row]["text"] in block
            assert block.endswith("Answer: " + docs[row]["label"])
        assert docs[ex.doc_index]["text"] in blocks[-1] and blocks[-1].endswith("Answer:")
    again = build_examples(recipe, tokenizer)
    assert [e.demos for e in again] == [e.demos for e in examples]  # seeded


# --- training runs ---------------------------------------------------------------------

def test_loss_decreases_on_a_real_task(trained):
    log = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 18  # 48 examples / 8 per batch * 3 epochs
    assert log[-1]["loss"] < log[0]["loss"] - 0.2


def test_run_folder_holds_everything(trained):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "adapter/adapter_config.json",
                 "adapter/adapter_model.safetensors", "recipe.yaml", "README.md", "finharness.json"):
        assert (trained / name).is_file(), name
    assert not (trained / "checkpoints").exists()
    run = read_manifest(trained, "training_run").data
    assert run["examples"] == 48 and run["steps"] == 18 and run["prompt_format"] == "base"
    card = (trained / "README.md").read_text()
    assert re.search(r"\n\| fin_fpb +\| +48 \|\n", card)  # data table
    assert re.search(r"\n\| 18 +\| 3.0 +\| \d\.\d{4} +\|", card)  # last row of the training curve
    assert "lr: 0.005" in card and "library_name: transformers" in card
    recipe = load_recipe(trained / "recipe.yaml")  # the resolved recipe is itself a valid recipe
    assert recipe.training.warmup_ratio == 0.03


def test_an_identical_finished_run_is_not_redone(trained, capsys, progress):
    recipe = load_recipe(trained / "recipe.yaml")
    before = (trained / "finharness.json").stat().st_mtime_ns
    assert train_recipe(recipe) == trained
    assert "already trained" in capsys.readouterr().out
    assert (trained / "finharness.json").stat().st_mtime_ns == before


def test_a_run_recorded_before_a_new_recipe_field_is_still_the_same_recipe(trained, capsys, progress):
    # Runs made by an older finharness have no `split:` line; the recipe they record is the same one.
    stored = trained / "recipe.yaml"
    text = stored.read_text()
    try:
        stored.write_text("".join(line for line in text.splitlines(True) if line.strip() != "split: null"))
        assert stored.read_text() != text
        assert train_recipe(load_recipe(stored)) == trained
        assert "already trained" in capsys.readouterr().out
        # A recipe that really differs is still refused.
        changed = load_recipe(stored).model_copy(update={"seed": 7})
        with pytest.raises(RecipeError, match="holds a finished run of a different recipe"):
            train_recipe(changed)
    finally:
        stored.write_text(text)


def test_resume_ends_with_the_same_weights(tiny_checkpoint, tmp_path, monkeypatch, trained):
    recipe = parse_recipe(tiny_recipe(tiny_checkpoint, tmp_path))
    kill_after_checkpoint(recipe, monkeypatch, step=12)
    final = tmp_path / "fpb-tiny"
    assert not final.exists() and (tmp_path / "fpb-tiny.partial" / "checkpoints" / "step-000012").is_dir()
    with pytest.raises(RecipeError, match="pass --resume"):
        train_recipe(recipe)

    assert train_recipe(recipe, resume=True) == final
    resumed = load_file(final / "adapter" / "adapter_model.safetensors")
    straight = load_file(trained / "adapter" / "adapter_model.safetensors")
    assert resumed.keys() == straight.keys()
    for name in straight:
        assert torch.equal(resumed[name], straight[name]), name
    resumed_log = [json.loads(line) for line in (final / "train_log.jsonl").read_text().splitlines()]
    straight_log = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed_log] == [3, 6, 9, 12, 15, 18]
    assert [r["loss"] for r in resumed_log] == [r["loss"] for r in straight_log]


def test_merged_checkpoint_scores_like_base_plus_adapter(trained, tiny_checkpoint):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from fin_tasks import TASKS_DIR

    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)

    def score(model_args: str):
        out = lm_eval.simple_evaluate(model="hf", model_args=model_args, tasks=["fin_fpb"], limit=8,
                                      task_manager=manager, log_samples=True, batch_size=4, device="cpu")
        return out["results"]["fin_fpb"]["acc,none"], [s["resps"] for s in out["samples"]["fin_fpb"]]

    merged_acc, merged = score(f"pretrained={trained}")
    adapter_acc, adapted = score(f"pretrained={tiny_checkpoint},peft={trained / 'adapter'}")
    assert merged_acc == adapter_acc
    for a, b in zip(merged, adapted):
        for (ll_a, _), (ll_b, _) in zip([r[0] for r in a], [r[0] for r in b]):
            assert ll_a == pytest.approx(ll_b, abs=1e-4)


def test_multi_task_recipes_mix_every_task_with_its_own_count(tiny_checkpoint, tmp_path):
    from collections import Counter

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    recipe = parse_recipe(tiny_recipe(tiny_checkpoint, tmp_path, tasks=[
        {"name": "fin_fpb", "samples": 6}, {"name": "fin_fomc", "samples": 4}, {"name": "generative_fin_finred", "samples": 2}]))
    examples = build_examples(recipe, tokenizer)
    assert Counter(e.task for e in examples) == {"fin_fpb": 6, "fin_fomc": 4, "generative_fin_finred": 2}
    assert all(e.prompt.startswith("Examine the excerpt") for e in examples if e.task == "fin_fomc")
    assert len({(e.task, e.doc_index) for e in examples}) == 12  # no example drawn twice


def test_the_run_and_its_adapter_carry_hub_model_cards_and_push_adds_a_model_index(trained, tmp_path):
    from huggingface_hub import ModelCard

    from evidence.measures import read_scores
    from finharness.push import push
    from harness.evaluate import EvalRequest, run_eval
    from plumbing.model_cards import hub_base_model

    card = ModelCard.load(trained / "README.md")
    assert card.data.library_name == "transformers" and {"finharness", "lora", "fin_fpb"} <= set(card.data.tags)
    # A local base folder is named in the text, never given as a Hub id (nor a relation to one).
    assert card.data.base_model is None and card.data.get("base_model_relation") is None
    adapter = ModelCard.load(trained / "adapter" / "README.md")  # not PEFT's empty template
    assert adapter.data.library_name == "peft" and "lora" in adapter.data.tags
    assert "More Information Needed" not in adapter.text and "fin_fpb" in adapter.text
    # Hub ids where they are known: an embedded model's upstream checkpoint, org/name@rev without the revision.
    assert hub_base_model("smollm2-135m-instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert hub_base_model("acme/fin-7b@abc123") == "acme/fin-7b" and hub_base_model(str(trained)) is None
    from plumbing.model_cards import card_text

    embedded = ModelCard(card_text("# run", base_model=hub_base_model("gemma3-270m"), library_name="peft",
                                   tags=["lora"], base_model_relation="adapter"))
    assert embedded.data.base_model == "google/gemma-3-270m" and embedded.data.get("base_model_relation") == "adapter"

    # Scored, then pushed offline: the card gets the evaluation as its model-index; nothing is uploaded.
    scored = tmp_path / "scored"
    run_eval(EvalRequest(model=str(trained), tasks=["fin_fpb"], limit=4, batch_size=4, chat_template="off",
                         output_path=scored))
    done = push(trained, "acme/fpb-tiny", results=scored)
    assert done.url is None and done.with_index and done.card == trained / "README.md"
    results = {r.metric_type: r for r in ModelCard.load(trained / "README.md").data.eval_results}
    assert results["acc"].metric_value == pytest.approx(read_scores(scored, "acc")["fin_fpb"])
    assert results["acc"].dataset_type == "TheFinAI/flare-fpb" and results["acc"].dataset_name == "fin_fpb"
    assert "4 docs per task" in results["acc"].metric_name
    with pytest.raises(ValueError, match="not a finished training run or merge folder"):
        push(tmp_path, "acme/x")
