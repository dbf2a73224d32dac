"""Load the base checkpoint and make its trainable part: PEFT LoRA adapters (optionally on a
4-bit base, QLoRA) or, for ``method: full_finetune``, every weight."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from training.recipe import LoraSpec, RecipeError, TrainRecipe


def check_quantization(lora: LoraSpec) -> None:
    """QLoRA needs bitsandbytes and a CUDA device; say so before anything is loaded."""
    import torch

    if lora.quantize == "none":
        return
    if not torch.cuda.is_available():
        raise RecipeError("lora.quantize: 4bit (QLoRA) needs a CUDA GPU; bitsandbytes' 4-bit layers do not "
                          "train on this CPU machine. Use quantize: none here.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise RecipeError("lora.quantize: 4bit needs bitsandbytes: pip install 'bitsandbytes>=0.45'")


def load_base(checkpoint: Path, quantize: str = "none"):
    """Model (float32, or 4-bit NF4 for QLoRA; safetensors only, no remote code) and tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint, trust_remote_code=False)
    extra = {}
    if quantize == "4bit":
        from transformers import BitsAndBytesConfig

        # The QLoRA paper's settings: NF4 with double quantization, bf16 compute.
        extra = {"quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16), "device_map": {"": torch.cuda.current_device()}}
    model = AutoModelForCausalLM.from_pretrained(
        checkpoint, dtype=torch.float32, trust_remote_code=False, use_safetensors=True, **extra)
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


def add_lora(model, lora: LoraSpec, gradient_checkpointing: bool = False):
    """PEFT LoRA on ``model``; call :func:`check_target_modules` first for a clear error."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if lora.quantize != "none":
        # Casts norms to fp32 and enables input gradients, as PEFT's QLoRA recipe does.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    config = LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules, bias="none", task_type="CAUSAL_LM",
    )
    import warnings

    with warnings.catch_warnings():
        # PEFT 0.21 reads transformers' deprecated `is_gradient_checkpointing` attribute: a
        # FutureWarning on every run that no recipe can act on (PEFT's to change, not ours).
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, config)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    touched = [n for n in trainable if "embed" in n or "lm_head" in n]
    if touched:  # PEFT's all-linear skips the output layer; a custom list must too
        raise RecipeError(f"lora.target_modules would train {touched[:3]}: embeddings and lm_head stay frozen")
    return peft_model


def trainable_model(model, recipe: TrainRecipe):
    """What the loop trains: the PEFT model, or the whole model for a full fine-tune."""
    spec = recipe.training
    if recipe.method == "full_finetune":
        model.requires_grad_(True)
        trained = model
    else:
        trained = add_lora(model, recipe.lora, spec.gradient_checkpointing)
    if spec.gradient_checkpointing:
        # Non-reentrant checkpointing needs no input gradients, so LoRA on a frozen base works.
        lm = language_model(trained)
        kwargs = {"use_reentrant": False}
        if hasattr(lm, "activation_checkpointing_enable"):  # transformers 5.23's name; the old one warns
            lm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return trained


def language_model(model):
    """The transformers model under a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model
