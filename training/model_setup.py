"""Load the base checkpoint and put PEFT LoRA adapters on it, checked against the recipe."""
from __future__ import annotations

from pathlib import Path

from training.recipe import LoraSpec, RecipeError


def load_base(checkpoint: Path):
    """Model (float32, safetensors only, no remote code) and tokenizer of a local checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(
        checkpoint, dtype=torch.float32, trust_remote_code=False, use_safetensors=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def linear_module_names(model) -> set[str]:
    import torch

    return {name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)}


def check_target_modules(model, lora: LoraSpec) -> None:
    if lora.target_modules == "all-linear":
        return
    available = linear_module_names(model)
    missing = [m for m in lora.target_modules if m not in available]
    if missing:
        raise RecipeError(
            f"lora.target_modules: {missing} not in this model (its linear layers: {sorted(available)})")


def add_lora(model, lora: LoraSpec):
    """PEFT LoRA on ``model``; call :func:`check_target_modules` first for a clear error."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules, bias="none", task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    touched = [n for n in trainable if "embed" in n or "lm_head" in n]
    if touched:  # PEFT's all-linear skips the output layer; a custom list must too
        raise RecipeError(f"lora.target_modules would train {touched[:3]}: embeddings and lm_head stay frozen")
    return peft_model
