"""Merge methods as one table: MergeKit's own registry, plus finharness's policy columns.

What a method takes (a base model or not, how many inputs, which per-model and shared
parameters, which are required) is read from MergeKit's method registry
(``mergekit.merge_methods.registry``), never typed again here. What finharness asks of a
recipe on top of that is :data:`POLICY`, one row per method: adding a method MergeKit ships
is one row; one it lacks is defined in ``merges/extra_methods.py``, then gets its row.
``finharness merge --methods`` prints the table.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from merges.extra_methods import register_extra_methods


@dataclass(frozen=True)
class Policy:
    """finharness's rules for one method, beyond MergeKit's."""

    density_required: bool = (
        False  # the method sparsifies: a recipe must say how much (MergeKit's default 1.0 keeps all)
    )
    lora_space: bool = False  # merges/lora_space.py merges it from base + adapters, bit-identical to MergeKit
    note: str = ""


POLICY: dict[str, Policy] = {
    "task_arithmetic": Policy(lora_space=True, note="arXiv 2411.02476's merge"),
    "ties": Policy(lora_space=True, note="density optional: 1.0 keeps every entry, TIES still elects signs"),
    "dare_ties": Policy(density_required=True, lora_space=True),
    "dare_linear": Policy(density_required=True, lora_space=True),
    "linear": Policy(note="a weighted average of whole weights; no base"),
    "slerp": Policy(note="the base and one model, mixed by parameters.t"),
    "breadcrumbs": Policy(density_required=True),
    "della": Policy(density_required=True),
    "model_stock": Policy(note="weights from the models' geometry; at least two models"),
}


@dataclass(frozen=True)
class MergeMethod:
    name: str
    pretty_name: str
    reference: str
    needs_base: bool
    min_models: int  # besides the base
    max_models: int | None
    model_parameters: tuple[str, ...]  # per model (MergeKit's non-base / input scope)
    required_model_parameters: tuple[str, ...]
    shared_parameters: tuple[str, ...]  # the recipe's `parameters:`
    shared_defaults: dict  # MergeKit's default of each shared parameter that has a plain one
    required_shared_parameters: tuple[str, ...]
    random: bool  # draws random masks (DARE): the merge seed matters
    sparsifies: bool  # reads ``density`` (MergeKit lists it for task_arithmetic too, which ignores it)
    policy: Policy


def _row(name: str, policy: Policy) -> MergeMethod:
    from mergekit.merge_methods import registry

    register_extra_methods()
    method = registry.get(name)
    spec = method.spec
    required_base = spec.contract.base.name == "REQUIRED"
    per_model = [p for p in spec.parameters if p.scope.name in ("NON_BASE", "INPUT")]
    shared = [p for p in spec.parameters if p.scope.name == "SHARED"]

    def required(params):
        return tuple(p.name for p in params if not isinstance(p.default, (bool, int, float, str, type(None))))

    inputs_min, inputs_max = spec.contract.min_inputs, spec.contract.max_inputs
    base_counted = 1 if required_base and not per_model else 0  # slerp / model_stock count the base as an input
    sparsify = getattr(method, "sparsification_method", None)
    return MergeMethod(
        name=name, pretty_name=spec.pretty_name or name, reference=spec.reference_url or "",
        needs_base=required_base,
        min_models=max(1, inputs_min - base_counted),
        max_models=None if inputs_max is None else inputs_max - base_counted,
        model_parameters=tuple(p.name for p in per_model), required_model_parameters=required(per_model),
        shared_parameters=tuple(p.name for p in shared), required_shared_parameters=required(shared),
        shared_defaults={p.name: p.default for p in shared if isinstance(p.default, (bool, int, float, str))},
        random=getattr(sparsify, "value", None) == "random", policy=policy,
        sparsifies="density" in (p.name for p in per_model) and sparsify is not None,
    )


@cache
def methods() -> dict[str, MergeMethod]:
    """Every method finharness accepts, MergeKit's facts joined to :data:`POLICY`."""
    return {name: _row(name, policy) for name, policy in POLICY.items()}


def shared_parameters() -> set[str]:
    """Every recipe-level ``parameters:`` key some method takes (MergeKit's shared scope)."""
    return {name for m in methods().values() for name in m.shared_parameters}


def lookup(name: str) -> MergeMethod:
    try:
        return methods()[name]
    except KeyError:
        raise ValueError(f"method {name!r} is not one finharness runs (known: {', '.join(POLICY)})") from None


def method_table() -> list[dict]:
    rows = []
    for m in methods().values():
        count = f"{m.min_models}+" if m.max_models is None else (
            str(m.min_models) if m.min_models == m.max_models else f"{m.min_models}-{m.max_models}")
        rows.append({
            "method": m.name, "base": "required" if m.needs_base else "-", "models": count,
            "per model": ", ".join(p + ("*" if p in m.required_model_parameters else "") for p in m.model_parameters),
            "parameters": ", ".join(p + ("*" if p in m.required_shared_parameters else "")
                                    for p in m.shared_parameters),
            "density required": "yes" if m.policy.density_required else "",
            "LoRA space": "yes" if m.policy.lora_space else "", "random": "yes" if m.random else "",
            "reference": m.reference,
        })
    return rows
