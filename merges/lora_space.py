"""Merge LoRA fine-tunes without reading their full checkpoints: MergeKit's plan, our inputs.

When every model is a finharness training run (base + LoRA adapter) on the merge's base,
a fine-tuned weight differs from the base only where the adapter sits, and there it is
``W + scale * B @ A``, which is what PEFT's ``merge_and_unload`` wrote into the run folder.
So we build MergeKit's own execution plan for the recipe's YAML and walk it in MergeKit's
order, calling each of its merge tasks (``ExecuteMergeMethodTask.execute``, MergeKit's
arithmetic) on tensors made from the base and the adapters:

- weights no adapter touches are the base for every model, and task-arithmetic-family
  merges of identical inputs return the base, so they are copied, not computed;
- with DARE, sparsification draws from the global torch RNG tensor by tensor, so every
  merge task is executed, in MergeKit's order, to keep the random stream MergeKit's.

The result equals the full-model MergeKit merge of the same YAML (tested tensor by
tensor). Methods that use absolute weights (slerp, model_stock, linear) fall back to it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from merges.methods import POLICY, lookup
from merges.recipe import MergePoint

FAST_METHODS = {name for name, policy in POLICY.items() if policy.lora_space}


def fast_path_refusal(point: MergePoint, paths: dict[str, Path]) -> str | None:
    """Why the LoRA-space path cannot be used for this point (None: it can)."""
    if point.method not in FAST_METHODS:
        return f"{point.method} is not computed from task vectors alone (fast path: {sorted(FAST_METHODS)})"
    base = paths[point.base_model]
    for m in point.models:
        adapter = paths[m.model] / "adapter" / "adapter_config.json"
        if not adapter.is_file():
            return f"{m.model} is not a finharness training run with a LoRA adapter"
        config = json.loads(adapter.read_text())
        if Path(config["base_model_name_or_path"]).resolve() != base:
            return f"{m.model}'s adapter was trained on {config['base_model_name_or_path']}, not on the merge base"
        if (
            config.get("use_dora")
            or config.get("lora_bias")
            or config.get("rank_pattern")
            or config.get("alpha_pattern")
        ):
            return f"{m.model}'s adapter uses DoRA, LoRA bias or per-module ranks"
    return None


class AdapterDeltas:
    """One run's ``{weight name: scale * B @ A}``, computed per weight when asked (as PEFT's
    ``get_delta_weight`` does), so the merge holds one full-size delta at a time instead of
    every adapter's (four adapters of a 135M model: 1.7 GB of fresh pages)."""

    def __init__(self, run_folder: Path):
        import math

        from safetensors.torch import load_file

        config = json.loads((run_folder / "adapter" / "adapter_config.json").read_text())
        r, alpha = config["r"], config["lora_alpha"]
        self.scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
        self.fan_in_fan_out = bool(config.get("fan_in_fan_out"))
        tensors = load_file(run_folder / "adapter" / "adapter_model.safetensors")
        self.factors = {}
        for key, a in tensors.items():
            if key.endswith(".lora_A.weight"):
                module = key[: -len(".lora_A.weight")].removeprefix("base_model.model.")
                self.factors[f"{module}.weight"] = (tensors[key.replace(".lora_A.", ".lora_B.")], a)

    def __contains__(self, name: str) -> bool:
        return name in self.factors

    def get(self, name: str):
        if name not in self.factors:
            return None
        b, a = self.factors[name]
        delta = b @ a
        return (delta.T if self.fan_in_fan_out else delta) * self.scale


def load_state(folder: Path) -> dict:
    """Every tensor of a checkpoint folder's safetensors files."""
    from safetensors.torch import load_file

    state = {}
    for file in sorted(folder.glob("*.safetensors")):
        state.update(load_file(file))
    return state


def merge_in_lora_space(config, point: MergePoint, paths: dict[str, Path], out: Path) -> None:
    """Write the merged checkpoint of ``config`` (a MergeConfiguration) into ``out``."""
    import torch
    from mergekit.architecture import get_architecture_info
    from mergekit.graph import Executor
    from mergekit.merge import _model_out_config
    from mergekit.merge_methods.task_adapter import ExecuteMergeMethodTask
    from mergekit.options import MergeOptions
    from mergekit.plan import MergePlanner
    from safetensors.torch import save_file
    from transformers import AutoTokenizer
    from transformers.trainer_utils import set_seed

    options = MergeOptions(random_seed=point.seed, quiet=True)
    set_seed(point.seed)  # as run_merge does first, so DARE's draws match MergeKit's
    arch = get_architecture_info(config, options)
    out_config = _model_out_config(config, arch, trust_remote_code=False)
    targets = MergePlanner(config, arch, options=options, out_model_config=out_config).plan_to_disk(out_path=str(out))
    schedule = Executor(targets=targets).schedule.tasks

    base_path = paths[point.base_model]
    base = load_state(base_path)
    deltas_by_path = {str(paths[m.model]): AdapterDeltas(paths[m.model]) for m in point.models}
    always_execute = lookup(point.method).random
    merged = {}
    for handle in schedule:
        task = handle.task()
        if not isinstance(task, ExecuteMergeMethodTask):
            continue
        weight = task.output_weight
        names = [weight.name, *(weight.aliases or ()), *(weight.tied_names or ())]
        name = next((n for n in names if n in base), None)
        if name is None:
            continue
        w = base[name]
        touched = any(name in d for d in deltas_by_path.values())
        if not touched and not always_execute:
            merged[weight.name] = w
            continue
        dtype = task.gather_tensors.dtype
        inputs = {}
        for ref in task.gather_tensors.weight_info.keys():
            delta = deltas_by_path.get(ref.model.path, {}).get(name)
            tensor = w if delta is None else delta.add_(w)  # a fresh tensor: add in place (a + b == b + a)
            inputs[ref] = tensor.to(getattr(torch, dtype)) if dtype else tensor
        result = task.execute(tensors=inputs)
        if result is not None:
            merged[weight.name] = result.contiguous()
    if getattr(out_config, "tie_word_embeddings", False):
        merged.pop("lm_head.weight", None)
    out.mkdir(parents=True, exist_ok=True)
    save_file(merged, out / "model.safetensors", metadata={"format": "pt"})
    out_config.save_pretrained(out)
    AutoTokenizer.from_pretrained(base_path).save_pretrained(out)
    if (base_path / "generation_config.json").is_file():
        shutil.copy(base_path / "generation_config.json", out / "generation_config.json")
