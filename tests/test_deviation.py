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
from harness.deviation import answer_deviation, heldout_pairs, measure, weight_change
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


def load(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).eval()


def test_answer_kl_is_zero_for_the_same_model_and_grows_with_the_perturbation(tiny_checkpoint, tmp_path):
    from transformers import AutoTokenizer

    pairs = heldout_pairs(["fin_fpb"], per_task=4)
    assert len(pairs) == 4 and len(set(pairs)) == 4
    assert pairs == heldout_pairs(["fin_fpb"], per_task=4)  # seeded
    assert all(answer in (" negative", " neutral", " positive") for _, answer in pairs)  # the gold label's word
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    base = load(tiny_checkpoint)
    same = answer_deviation(base, load(tiny_checkpoint), tokenizer, pairs)
    assert same.kl == pytest.approx(0.0, abs=1e-7) and same.eos_shift == pytest.approx(0.0, abs=1e-7)
    assert same.texts == 4 and same.tokens >= 4
    small = answer_deviation(base, load(scaled_layer(tiny_checkpoint, tmp_path / "a", 1, 1.05)), tokenizer, pairs).kl
    large = answer_deviation(base, load(scaled_layer(tiny_checkpoint, tmp_path / "b", 1, 1.5)), tokenizer, pairs).kl
    assert 0 < small < large

    # The definition, by hand, on the first document: at each position predicting an answer
    # token, sum_v p (log p - log q) over the vocabulary without EOS, both renormalized.
    tuned = load(tmp_path / "b")
    context, answer = pairs[0]
    n = len(tokenizer(context)["input_ids"])
    ids = tokenizer(context + answer, return_tensors="pt")["input_ids"]
    keep = torch.arange(len(tokenizer)) != tokenizer.eos_token_id
    with torch.no_grad():
        p = torch.log_softmax(base(input_ids=ids).logits[0, n - 1:-1][:, keep], -1)
        q = torch.log_softmax(tuned(input_ids=ids).logits[0, n - 1:-1][:, keep], -1)
    by_hand = float((p.exp() * (p - q)).sum(-1).mean())
    assert answer_deviation(base, tuned, tokenizer, pairs[:1]).kl == pytest.approx(by_hand, rel=1e-5)


def test_a_model_that_only_learned_to_stop_has_no_answer_kl_and_its_eos_shift_is_reported(tiny_checkpoint, tmp_path):
    """Two models that differ only in the end-of-sequence logit (the output row of EOS moved
    toward every hidden state): answer KL 0, the whole-vocabulary KL and the EOS shift not."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    stopper = tmp_path / "stopper"
    shutil.copytree(tiny_checkpoint, stopper)
    tensors = load_file(stopper / "model.safetensors")
    eos = tokenizer.eos_token_id
    tensors["lm_head.weight"][eos] += 3.0 * tensors["model.norm.weight"]  # a larger EOS logit almost everywhere
    save_file(tensors, stopper / "model.safetensors", metadata={"format": "pt"})
    pairs = heldout_pairs(["fin_fomc"], per_task=3)
    found = answer_deviation(load(tiny_checkpoint), load(stopper), tokenizer, pairs)
    assert found.kl == pytest.approx(0.0, abs=1e-6)
    assert found.kl_with_eos > 1e-3 and found.eos_shift > 1e-3
    assert found.eos_end_tuned > found.eos_end_base


def test_cli_prints_and_writes_both_measures(tiny_checkpoint, tmp_path, capsys):
    moved = scaled_layer(tiny_checkpoint, tmp_path / "moved", layer=0, factor=0.9)
    out = tmp_path / "deviation.json"
    assert main(["deviation", str(moved), "--base_model", str(tiny_checkpoint), "--tasks", "fin_fomc",
                 "--limit", "3", "--output_path", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "relative weight change" in printed and "| layer 0 " in printed and "nats/token" in printed
    assert "p(EOS) inside the answer" in printed
    data = json.loads(out.read_text())
    assert data["layers"]["layer 0"] == pytest.approx(0.1, rel=1e-6)
    assert data["kl"] > 0 and data["kl_texts"] == 3 and data["kl_tasks"] == ["fin_fomc"]
    assert data["kl_scope"] == "reference-answer tokens, teacher forced, EOS set apart"
    assert data["eos_shift"] is not None and data["kl_with_eos"] > 0


def test_a_checkpoint_of_another_shape_is_refused_naming_the_tensor(tiny_checkpoint, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_checkpoint, other)
    tensors = load_file(other / "model.safetensors")
    name = next(n for n in tensors if ".layers.0." in n and n.endswith("weight") and tensors[n].dim() == 2)
    tensors[name] = tensors[name][:, :-1].contiguous()
    save_file(tensors, other / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=f"tensor '{name}' has shape"):
        measure(other, tiny_checkpoint)
