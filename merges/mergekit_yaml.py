"""A merge point as MergeKit YAML: valid ``mergekit-yaml`` input, byte-stable per recipe."""
from __future__ import annotations

from pathlib import Path

import yaml

from merges.extra_methods import register_extra_methods
from merges.methods import lookup
from merges.recipe import MergePoint
from plumbing.recipes import RecipeError


def mergekit_dict(point: MergePoint, paths: dict[str, Path]) -> dict:
    """``paths`` maps every model string of the point (and the base) to its local folder."""
    def ref(spec: str) -> str:
        return str(paths[spec])

    def model_params(m) -> dict:
        return {k: v for k, v in (("weight", m.weight), ("density", m.density)) if v is not None}

    config: dict = {"merge_method": point.method}
    if point.base_model and lookup(point.method).needs_base:  # linear ignores a base
        config["base_model"] = ref(point.base_model)
    if point.method == "slerp":  # MergeKit's slerp takes the base and the other model as inputs
        models = [{"model": ref(point.base_model)}, {"model": ref(point.models[0].model)}]
    elif point.method == "model_stock":
        models = [{"model": ref(m.model)} for m in point.models]
    else:
        models = [{"model": ref(m.model), "parameters": model_params(m)} for m in point.models]
    config["models"] = models
    if point.parameters:
        config["parameters"] = {k: point.parameters[k] for k in sorted(point.parameters)}
    config["dtype"] = point.dtype
    return config


def to_yaml(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def validate(config: dict, where: str = ""):
    """MergeKit's own schema and method check, so a bad config fails before any weight loads."""
    from mergekit import merge_methods
    from mergekit.config import MergeConfiguration

    register_extra_methods()  # MergeKit finds a method by name in its registry, here and in run_merge

    try:
        merge_methods.get(config["merge_method"])
        return MergeConfiguration.model_validate(config)
    except Exception as err:  # pydantic ValidationError or MergeKit's RuntimeError
        raise RecipeError(f"{where}MergeKit rejects the generated config: {err}") from None
