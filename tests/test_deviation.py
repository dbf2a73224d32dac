"""The deviation measure on known perturbations of a tiny random model."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from finharness.main import main
from harness.deviation import heldout_texts, measure, next_token_kl, weight_change
from plumbing.checkpoints import CheckpointError


def scaled_layer(base: Path, dest: Path, layer: int, factor: float) -> Path:
    """A copy of ``base`` with every tensor of one decoder layer multiplied by ``factor``."""
    shutil.copytree(base, dest)
    tensors = load_file(base / "model.safetensors")
    for name in tensors:
        if f".layers.{layer}." in name:
            tensors[name] = tensors[name] * factor
    save_file(tensors, dest / "model.safetensors", metadata={"format": "pt"})
    return dest


def test_scaling_one_layer_moves_that_layer_by_exactly_the_factor(tiny_checkpoint, tmp_path):
    moved = scaled_layer(tiny_checkpoint, tmp_path / "moved", layer=1, factor=1.1)
    total, layers = weight_change(tiny_checkpoint, moved)
    assert layers["layer 1"] == pytest.approx(0.1, rel=1e-6)
    assert layers["layer 0"] == 0.0 and layers["embeddings"] == 0.0
    # The whole model: 0.1 x the layer's share of the base's norm.
    base = load_file(tiny_checkpoint / "model.safetensors")
    share = math.sqrt(sum(float((t.double() ** 2).sum()) for n, t in base.items() if ".layers.1." in n)
                      / sum(float((t.double() ** 2).sum()) for t in base.values()))
    assert total == pytest.approx(0.1 * share, rel=1e-6)
    assert list(layers)[:2] == ["layer 0", "layer 1"]


def test_kl_is_zero_for_the_same_model_and_grows_with_the_perturbation(tiny_checkpoint, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    texts = heldout_texts(["fin_fpb"], per_task=4)
    assert len(texts) == 4 and len(set(texts)) == 4
    assert texts == heldout_texts(["fin_fpb"], per_task=4)  # seeded
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    load = lambda p: AutoModelForCausalLM.from_pretrained(p).eval()  # noqa: E731
    base = load(tiny_checkpoint)
    same, tokens = next_token_kl(base, load(tiny_checkpoint), tokenizer, texts)
    assert same == pytest.approx(0.0, abs=1e-7) and tokens > 20
    small = next_token_kl(base, load(scaled_layer(tiny_checkpoint, tmp_path / "a", 1, 1.05)), tokenizer, texts)[0]
    large = next_token_kl(base, load(scaled_layer(tiny_checkpoint, tmp_path / "b", 1, 1.5)), tokenizer, texts)[0]
    assert 0 < small < large

    # The definition, by hand, on the first text: sum_v p (log p - log q), averaged over positions.
    tuned = load(tmp_path / "b")
    ids = tokenizer(texts[0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        p = torch.log_softmax(base(input_ids=ids).logits[0, :-1], -1)
        q = torch.log_softmax(tuned(input_ids=ids).logits[0, :-1], -1)
    by_hand = float((p.exp() * (p - q)).sum(-1).mean())
    assert next_token_kl(base, tuned, tokenizer, texts[:1])[0] == pytest.approx(by_hand, rel=1e-5)


def test_cli_prints_and_writes_both_measures(tiny_checkpoint, tmp_path, capsys):
    moved = scaled_layer(tiny_checkpoint, tmp_path / "moved", layer=0, factor=0.9)
    out = tmp_path / "deviation.json"
    assert main(["deviation", str(moved), "--base", str(tiny_checkpoint), "--tasks", "fin_fomc",
                 "--limit", "3", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "relative weight change" in printed and "| layer 0 " in printed and "nats/token" in printed
    data = json.loads(out.read_text())
    assert data["layers"]["layer 0"] == pytest.approx(0.1, rel=1e-6)
    assert data["kl"] > 0 and data["kl_texts"] == 3 and data["kl_tasks"] == ["fin_fomc"]


def test_a_checkpoint_of_another_shape_is_refused_naming_the_tensor(tiny_checkpoint, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_checkpoint, other)
    tensors = load_file(other / "model.safetensors")
    name = next(n for n in tensors if ".layers.0." in n and n.endswith("weight") and tensors[n].dim() == 2)
    tensors[name] = tensors[name][:, :-1].contiguous()
    save_file(tensors, other / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=f"tensor '{name}' has shape"):
        measure(other, tiny_checkpoint)
