"""Can these models be merged? Checked from config, safetensors headers and tokenizers,
before any weight is loaded or anything is written."""
from __future__ import annotations

from pathlib import Path

from plumbing.checkpoints import CheckpointError, architecture_difference, resolve_checkpoint
from merges.recipe import MergePoint
from plumbing.recipes import RECIPES_DIR, RecipeError
from training.recipe import recipe_producing


def resolve_models(point: MergePoint) -> dict[str, Path]:
    specs = ([point.base_model] if point.base_model else []) + [m.model for m in point.models]
    for spec in specs:  # first, before any model is converted or fetched: a run not trained yet
        made_by = None if Path(spec).expanduser().exists() else recipe_producing(spec, [RECIPES_DIR / "training"])
        if made_by is not None:
            shown = made_by.relative_to(Path.cwd()) if made_by.is_relative_to(Path.cwd()) else made_by
            raise RecipeError(f"model {spec!r}: no such folder yet; the shipped training recipe {shown} makes it: "
                              f"finharness train {shown}")
    paths = {}
    for spec in specs:
        try:
            paths[spec] = resolve_checkpoint(spec)
        except CheckpointError as err:
            raise RecipeError(f"model {spec!r}: {err}") from None
    return paths


def tensor_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(file, framework="pt") as handle:
            for key in handle.keys():
                shapes[key] = tuple(handle.get_slice(key).get_shape())
    return shapes


def check_compatible(paths: dict[str, Path], reference: str) -> None:
    """Every model against the reference (the base, or the first model)."""
    from transformers import AutoTokenizer

    ref_path = paths[reference]
    ref_shapes = tensor_shapes(ref_path)
    ref_vocab = AutoTokenizer.from_pretrained(ref_path).get_vocab()
    for spec, path in paths.items():
        if spec == reference:
            continue
        diff = architecture_difference(path, ref_path)
        if diff:
            field, (got, want) = next(iter(diff.items()))
            raise RecipeError(f"model {spec!r}: architecture differs from {reference!r} ({field}: {got} vs {want})")
        shapes = tensor_shapes(path)
        for key in sorted(set(shapes) | set(ref_shapes)):
            if shapes.get(key) != ref_shapes.get(key):
                raise RecipeError(f"model {spec!r}: tensor {key} has shape {shapes.get(key)}, "
                                  f"{reference!r} has {ref_shapes.get(key)}")
        if AutoTokenizer.from_pretrained(path).get_vocab() != ref_vocab:
            raise RecipeError(f"model {spec!r}: tokenizer vocabulary differs from {reference!r}")


def check_finite(folder: Path, name: str) -> None:
    """Every tensor the merge wrote is finite; else a RecipeError naming the first bad tensor.
    A degenerate mix (weights cancelling under normalization, a density of 0, ...) must not
    leave a checkpoint that looks finished and scores as NaN."""
    import torch
    from safetensors import safe_open

    for file in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(file, framework="pt") as handle:
            for key in handle.keys():
                tensor = handle.get_tensor(key)
                if tensor.is_floating_point():
                    bad = int((~torch.isfinite(tensor)).sum())
                    if bad:
                        raise RecipeError(f"{name}: the merge wrote {bad} non-finite value(s) in tensor {key} "
                                          f"({file.name}); nothing was kept. Check the recipe's weights and "
                                          "parameters")
