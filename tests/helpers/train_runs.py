"""Training recipes for the tiny test models, and a run killed right after a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import loop
from training.run import train_recipe

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_recipe(base: Path, out: Path, **overrides) -> dict:
    recipe = {
        "name": "fpb-tiny",
        "base_model": str(base),
        "output_dir": str(out),
        "tasks": [{"name": "fin_fpb", "samples": 48}],
        "lora": {"r": 4, "alpha": 8, "dropout": 0.1},
        "training": {"lr": 5e-3, "epochs": 3, "batch_size": 8, "logging_steps": 3, "save_steps": 6},
    }
    recipe.update(overrides)
    return recipe


def kill_after_checkpoint(recipe, monkeypatch, step: int) -> None:
    """Train ``recipe`` and kill it right after the checkpoint of ``step`` is saved; the
    real saving is restored afterwards, for the resume."""
    real_save = loop.save_checkpoint

    def save_then_die(work_dir, done, *args):
        real_save(work_dir, done, *args)
        if done == step:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    try:
        with pytest.raises(KeyboardInterrupt):
            train_recipe(recipe)
    finally:
        monkeypatch.setattr(loop, "save_checkpoint", real_save)
