"""The lm-eval model backends ``finharness eval`` offers: one line each (as lm-eval's
``MODEL_MAPPING``), so a new backend is one module plus one line here (docs/architecture.md,
"Adding a scoring backend").

A backend is an lm-eval ``LM`` registered with ``@register_model(name)``; finharness imports the
entry's module just before lm-eval runs (lm-eval 0.4.13 has no plugin hook: the
``lm_eval.models`` entry point of lm-eval PR #4013 in pyproject.toml is for later versions),
so a backend's heavy imports cost only the runs that use it.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from plumbing.checkpoints import CheckpointError, ResolvedModel


def _vllm_args(args: dict[str, Any], model: ResolvedModel) -> dict[str, Any]:
    """vLLM's lm-eval wrapper serves adapters as LoRA requests and has no delta option."""
    if model.weight_type == "delta":
        raise CheckpointError("the vllm backend cannot apply delta weights; use --backend hf")
    if args.pop("peft", None):
        args["lora_local_path"] = str(model.extra)
    return args


def _checked_args(args: dict[str, Any], model: ResolvedModel) -> dict[str, Any]:
    """``--dtype bfloat16-checked``: the float32 model, scored in a bfloat16 copy and checked."""
    if args.get("dtype") == "bfloat16-checked":
        return {**args, "dtype": "float32", "checked_bfloat16": True}
    return args


@dataclass(frozen=True)
class BackendEntry:
    module: str | None  # imported before lm-eval runs: its @register_model registers the backend (None: lm-eval's)
    about: str  # its words in `finharness eval --help`
    # finharness's model_args (pretrained=, peft= or delta=, dtype=) as this backend takes them
    adapt_args: Callable[[dict[str, Any], ResolvedModel], dict[str, Any]] | None = None
    checks_bfloat16: bool = False  # takes --dtype bfloat16-checked (its adapt_args translates it)


REGISTRY: dict[str, BackendEntry] = {
    "hf-shared-prefix": BackendEntry("harness.backend.shared_prefix_lm", "scores each context once (default)",
                                     _checked_args, checks_bfloat16=True),
    "hf": BackendEntry(None, "lm-eval's own"),
    "vllm": BackendEntry(None, "for GPU machines (pip install 'finharness[vllm]')", _vllm_args),
}
Backend = Literal[tuple(REGISTRY)]  # type: ignore[valid-type]  # the registry's names, checked where a request is made
BACKENDS: tuple[str, ...] = tuple(REGISTRY)
DEFAULT_BACKEND: Backend = "hf-shared-prefix"


def register(name: str) -> None:
    """Import the backend's module, which registers it with lm-eval (lm-eval's own need nothing)."""
    module = REGISTRY[name].module
    if module is not None:
        importlib.import_module(module)


def backend_help() -> str:
    return "; ".join(f"{name}: {entry.about}" for name, entry in REGISTRY.items())
