"""Training at size on a tiny random model: full fine-tuning, gradient checkpointing,
trackers, and the QLoRA path's refusal on a machine without a GPU."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from plumbing.folders import read_manifest
from tests.helpers.train_runs import kill_after_checkpoint, tiny_recipe
from training.recipe import RecipeError, load_recipe, parse_recipe
from training.run import train_recipe


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "train_log.jsonl").read_text().splitlines()]


def full_recipe(base: Path, out: Path, **overrides) -> dict:
    recipe = tiny_recipe(base, out, name="fpb-full", method="full_finetune", **overrides)
    recipe.pop("lora")
    recipe["training"] = {**recipe["training"], "lr": 1e-3}
    return recipe


@pytest.fixture(scope="module")
def full_run(tiny_checkpoint, tmp_path_factory) -> Path:
    return train_recipe(parse_recipe(full_recipe(tiny_checkpoint, tmp_path_factory.mktemp("full"))))


def test_full_finetune_trains_every_weight_and_leaves_no_adapter(full_run, tiny_checkpoint):
    base = load_file(tiny_checkpoint / "model.safetensors")
    tuned = load_file(full_run / "model.safetensors")
    assert tuned.keys() == base.keys()
    unchanged = [n for n in base if torch.equal(base[n], tuned[n])]
    assert unchanged == []  # embeddings, norms and every linear layer moved
    assert not (full_run / "adapter").exists()
    run = read_manifest(full_run, "training_run").data
    assert run["method"] == "full_finetune" and run["steps"] == 18
    assert losses(full_run)[-1] < losses(full_run)[0] - 0.2
    card = (full_run / "README.md").read_text()
    assert "Full fine-tune (every weight trained, no adapter)" in card and "full-finetune" in card
    # The recorded recipe is a valid recipe and names no LoRA settings.
    recorded = load_recipe(full_run / "recipe.yaml")
    assert recorded.method == "full_finetune" and "lora:" not in (full_run / "recipe.yaml").read_text()


def test_full_finetune_resumes_to_the_same_weights(full_run, tiny_checkpoint, tmp_path, monkeypatch):
    recipe = parse_recipe(full_recipe(tiny_checkpoint, tmp_path))
    kill_after_checkpoint(recipe, monkeypatch, step=12)
    resumed = train_recipe(recipe, resume=True)
    a, b = load_file(resumed / "model.safetensors"), load_file(full_run / "model.safetensors")
    for name in b:
        assert torch.equal(a[name], b[name]), name
    assert losses(resumed) == losses(full_run)


def test_lora_settings_with_full_finetune_are_an_error(tiny_checkpoint, tmp_path):
    recipe = tiny_recipe(tiny_checkpoint, tmp_path, method="full_finetune")
    with pytest.raises(RecipeError, match="lora: settings given, but method is full_finetune"):
        parse_recipe(recipe)


@pytest.mark.parametrize("method", ["lora", "full_finetune"])
def test_gradient_checkpointing_gives_the_same_loss_curve(tiny_checkpoint, tmp_path, method):
    def run(checkpointing: bool) -> list[float]:
        make = full_recipe if method == "full_finetune" else tiny_recipe
        recipe = make(tiny_checkpoint, tmp_path / str(checkpointing))
        if method == "lora":
            recipe["lora"] = {**recipe["lora"], "dropout": 0.0}
        recipe["training"] = {**recipe["training"], "epochs": 1, "gradient_checkpointing": checkpointing}
        return losses(train_recipe(parse_recipe(recipe)))

    # The switch reaches the decoder layers (else the comparison below would be vacuous).
    from training.model_setup import language_model, load_base, trainable_model

    model, _ = load_base(tiny_checkpoint)
    switched = trainable_model(model, parse_recipe(
        {**(full_recipe if method == "full_finetune" else tiny_recipe)(tiny_checkpoint, tmp_path),
         "training": {"gradient_checkpointing": True}}))
    layers = language_model(switched).get_decoder().layers
    assert all(layer.gradient_checkpointing for layer in layers)

    plain, recomputed = run(False), run(True)
    assert len(plain) == 2
    assert recomputed == pytest.approx(plain, abs=1e-5)


def test_tensorboard_tracker_logs_the_loss_curve(tiny_checkpoint, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = tiny_recipe(tiny_checkpoint, tmp_path)
    recipe["training"] = {**recipe["training"], "epochs": 1, "logging_steps": 2, "report_to": "tensorboard"}
    run = train_recipe(parse_recipe(recipe))
    logdir = run / "trackers" / "fpb-tiny"  # accelerate's TensorBoard tracker: one folder per run name
    assert list(logdir.glob("events.out.tfevents.*")), "no TensorBoard event file in the run's trackers/ folder"
    board = EventAccumulator(str(logdir))
    board.Reload()
    curve = [(e.step, e.value) for e in board.Scalars("train/loss")]
    logged = [(r["step"], r["loss"]) for r in map(json.loads, (run / "train_log.jsonl").read_text().splitlines())]
    assert [s for s, _ in curve] == [s for s, _ in logged] == [2, 4, 6]
    assert [v for _, v in curve] == pytest.approx([v for _, v in logged], rel=1e-6)
    assert "train/tokens_per_second" in board.Tags()["scalars"]


def test_a_tracker_that_is_not_installed_is_named_before_training(tiny_checkpoint, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    recipe = tiny_recipe(tiny_checkpoint, tmp_path)
    recipe["training"] = {**recipe["training"], "report_to": "wandb"}
    with pytest.raises(RecipeError, match="training.report_to: wandb needs the wandb package"):
        train_recipe(parse_recipe(recipe))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the refusal does not apply")
def test_qlora_on_a_cpu_machine_is_refused_with_a_reason(tiny_checkpoint, tmp_path):
    recipe = tiny_recipe(tiny_checkpoint, tmp_path)
    recipe["lora"] = {**recipe["lora"], "quantize": "4bit"}
    with pytest.raises(RecipeError, match=r"lora.quantize: 4bit \(QLoRA\) needs a CUDA GPU"):
        train_recipe(parse_recipe(recipe))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="QLoRA trains 4-bit bitsandbytes layers, CUDA only")
def test_qlora_trains_an_adapter_and_merges_it_into_the_float_base(tiny_checkpoint, tmp_path):
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed")
    recipe = tiny_recipe(tiny_checkpoint, tmp_path)
    recipe["lora"] = {**recipe["lora"], "quantize": "4bit"}
    run = train_recipe(parse_recipe(recipe))
    assert read_manifest(run, "training_run").data["method"] == "qlora"
    assert (run / "adapter" / "adapter_model.safetensors").is_file()
    config = json.loads((run / "config.json").read_text())
    assert "quantization_config" not in config  # the saved model is the float base plus the adapter


def test_every_shipped_training_recipe_is_valid_and_the_authors_settings_are_spelled_out():
    folder = Path(__file__).resolve().parents[1] / "recipes" / "training"
    recipes = {p.name: load_recipe(p) for p in sorted(folder.glob("*.yaml"))}
    assert len(recipes) >= 5
    authors = recipes["gen_sentiment_amazon_2k_full.yaml"]
    spec = authors.training
    assert authors.method == "full_finetune"
    assert (spec.lr, spec.batch_size * spec.grad_accum, spec.epochs, spec.max_length) == (2e-5, 16, 2, 1024)
    assert (spec.warmup_ratio, spec.weight_decay, spec.scheduler) == (0.0, 0.0, "linear")
