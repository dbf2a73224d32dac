"""The merge recipe: a short, strict YAML schema, and its expansion into sweep points.

One recipe names a base (vanilla) model, the fine-tuned models with their weights, a
MergeKit method and its parameters. Lists under ``sweep:`` multiply into one merge per
combination, each with its own MergeKit YAML and checkpoint.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from merges.methods import POLICY, lookup, shared_parameters
from plumbing.recipes import RecipeError, read_recipe_yaml, validate_mapping
from plumbing.recipes import Strict as _Strict
from plumbing.vocabulary import Dtype

Method = Literal[tuple(POLICY)]  # merges/methods.py: MergeKit's registry plus finharness's policy


class MergeModel(_Strict):
    model: str = Field(description="training run folder, checkpoint folder or embedded name")
    weight: float | None = None
    density: float | None = None


class Sweep(_Strict):
    method: list[Method] | None = None
    weight: list[float] | None = Field(default=None, description="sets every model's weight")
    density: list[float] | None = None
    lambda_: list[float] | None = Field(default=None, alias="lambda")
    t: list[float] | None = None


class MergeRecipe(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    base_model: str | None = None
    method: Method
    models: list[MergeModel] = Field(min_length=1)
    parameters: dict[str, float | bool] = {}
    dtype: Dtype = "float32"  # bf16 rounds small LoRA deltas away
    seed: int = 0
    output_dir: str = "merged"  # outside the `merges` Python package, beside runs/
    # LoRA-space path (merges/lora_space.py) where every model is a LoRA run on the base:
    # bit-identical to MergeKit on the full checkpoints, faster and half the peak memory
    # (benchmarks/bench_merge.py). "off" always runs MergeKit on the full checkpoints.
    fast_path: Literal["on", "off"] = "on"
    sweep: Sweep | None = None

    @model_validator(mode="after")
    def _known_parameters(self):
        # Any key some method takes (read from MergeKit's registry); each point is then
        # checked against its own method's row.
        known = shared_parameters()
        unknown = set(self.parameters) - known
        if unknown:
            raise ValueError(f"parameters: unknown {sorted(unknown)} (known: {sorted(known)})")
        return self


class MergePoint(_Strict):
    """One concrete merge: every value fixed."""

    label: str  # folder name under the recipe's folder ("" when there is no sweep)
    base_model: str | None
    method: Method
    models: list[MergeModel]
    parameters: dict[str, float | bool]
    dtype: str
    seed: int
    fast_path: str


def _fmt(value: float) -> str:
    return f"{value:g}"


def _takes(method: str) -> dict[str, bool]:
    """Which swept parameters a method takes (MergeKit's registry: task_arithmetic has no density)."""
    m = lookup(method)
    return {"density": m.sparsifies, "lambda": "lambda" in m.shared_parameters,
            "t": "t" in m.shared_parameters}


def expand(recipe: MergeRecipe) -> list[MergePoint]:
    """Every sweep point (one point without a sweep), each checked for range errors. A method
    that does not take a swept parameter gets one point per value of the others, not one per
    value of that parameter (task_arithmetic in a density sweep: the same merge each time)."""
    sweep = recipe.sweep or Sweep()
    swept = {"density": sweep.density, "lambda": sweep.lambda_, "t": sweep.t}
    combos = []
    for method in sweep.method or [recipe.method]:
        takes = _takes(method)
        # An axis the method does not take stays unset, where the recipe had it swept.
        own = {k: (v if v and takes[k] else [None]) for k, v in swept.items()}
        combos += [(method, *rest) for rest in itertools.product(sweep.weight or [None], *own.values())]
    points = []
    for method, weight, density, lam, t in combos:
        models = [m.model_copy(update={k: v for k, v in (("weight", weight), ("density", density)) if v is not None})
                  for m in recipe.models]
        params = dict(recipe.parameters)
        if lam is not None:
            params["lambda"] = lam
        if t is not None:
            params["t"] = t
        parts = [f"{k}{_fmt(v) if not isinstance(v, str) else v}" for k, v in
                 (("", method), ("w", weight), ("d", density), ("l", lam), ("t", t))
                 if v is not None and (k or sweep.method)]
        label = "-".join(parts) if recipe.sweep else ""
        point = MergePoint(label=label, base_model=recipe.base_model, method=method, models=models,
                           parameters=params, dtype=recipe.dtype, seed=recipe.seed, fast_path=recipe.fast_path)
        check_point(point)
        points.append(point)
    return points


def check_point(point: MergePoint) -> None:
    """A point against its method's row (merges/methods.py): base, model count, required
    and accepted parameters, and finharness's ranges."""
    where = f"[{point.label}] " if point.label else ""
    m = lookup(point.method)
    if m.needs_base and not point.base_model:
        raise RecipeError(f"{where}base_model: method {m.name} needs a base model and none is given")
    n = len(point.models)
    if n < m.min_models or (m.max_models is not None and n > m.max_models):
        wanted = (f"exactly {m.min_models}" if m.max_models == m.min_models else f"at least {m.min_models}"
                  if m.max_models is None else f"{m.min_models} to {m.max_models}")
        raise RecipeError(f"{where}models: {m.name} takes {wanted} model(s) besides the base, got {n}")
    for i, model in enumerate(point.models):
        given = [name for name in ("weight", "density") if getattr(model, name) is not None]
        dropped = [name for name in given if name not in m.model_parameters]
        if dropped:
            # MergeKit would drop a value its method does not take: refuse instead.
            raise RecipeError(f"{where}models.{i} ({model.model}): method {m.name} takes no {' or '.join(dropped)}"
                              + (" (slerp's mix is parameters.t)" if m.name == "slerp" else ""))
        if "weight" in m.required_model_parameters:
            if model.weight is None:
                raise RecipeError(f"{where}models.{i} ({model.model}): method {m.name} needs a weight")
            if not math.isfinite(model.weight) or not -1 <= model.weight <= 1:
                raise RecipeError(f"{where}models.{i} ({model.model}): weight {model.weight} is outside [-1, 1]")
        if model.density is not None and not 0 < model.density <= 1:
            raise RecipeError(f"{where}models.{i} ({model.model}): density {model.density} is outside (0, 1]")
        if m.policy.density_required and model.density is None:
            raise RecipeError(f"{where}models.{i} ({model.model}): method {m.name} needs a density")
    weights = [model.weight for model in point.models if model.weight is not None]
    normalize = point.parameters.get("normalize", m.shared_defaults.get("normalize", False))
    # MergeKit divides by the sum of the weights: at 0 every tensor is 0/0; near 0 (0.5 and -0.4999)
    # every weight is blown up thousands of times. Refused below a tenth of the weights' size.
    if "normalize" in m.shared_parameters and normalize and weights and \
            abs(sum(weights)) < NEAR_ZERO_SUM * sum(abs(w) for w in weights):
        scale = sum(abs(w) for w in weights) / abs(sum(weights)) if sum(weights) else float("inf")
        raise RecipeError(f"{where}models: the weights {weights} sum to {sum(weights):g} and {m.name} normalizes by "
                          f"their sum, so every merged tensor would be "
                          + ("0/0" if not sum(weights) else f"scaled up {scale:,.0f} times")
                          + "; give weights that do not cancel, or parameters.normalize: false")
    for name in m.required_shared_parameters:
        if name not in point.parameters:
            raise RecipeError(f"{where}parameters.{name}: method {m.name} needs it")
    t = point.parameters.get("t")
    if m.name == "slerp" and not 0 <= t <= 1:
        raise RecipeError(f"{where}parameters.t: slerp needs t in [0, 1], got {t}")
    lam = point.parameters.get("lambda")
    if lam is not None and not 0 < lam <= 2:
        raise RecipeError(f"{where}parameters.lambda: {lam} is outside (0, 2]")


NEAR_ZERO_SUM = 0.1  # |sum of weights| below this share of sum |weights|: normalization blows them up


def parse_merge_recipe(data: object, source: str = "<recipe>") -> MergeRecipe:
    return validate_mapping(MergeRecipe, data, source)


def load_merge_recipe(path: str | Path) -> MergeRecipe:
    return parse_merge_recipe(read_recipe_yaml(path), str(path))
