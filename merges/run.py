"""``finharness merge RECIPE.yaml``: check everything, write MergeKit YAML, merge, publish.

Each merge point is built in a hidden ``.<label>.partial-<pid>`` folder beside its final
place and renamed when complete (its manifest ``finharness.json`` written last), so a killed
merge never leaves a checkpoint that looks finished.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from merges.checks import check_compatible, check_finite, resolve_models
from merges.lora_space import fast_path_refusal, merge_in_lora_space
from merges.mergekit_yaml import mergekit_dict, to_yaml, validate
from merges.recipe import MergePoint, MergeRecipe, expand, load_merge_recipe
from plumbing.model_cards import card_text, hub_base_model
from plumbing.recipes import RecipeError
from plumbing.atomic import write_atomic
from plumbing.folders import building, is_finished
from plumbing.lineage import merge_lineage
from plumbing.logs import log



@dataclass
class PlannedMerge:
    point: MergePoint
    folder: Path
    yaml_text: str
    config: object  # mergekit MergeConfiguration
    paths: dict[str, Path]
    fast_refusal: str | None


def plan(recipe: MergeRecipe, output_dir: str | Path | None = None) -> list[PlannedMerge]:
    """Every point checked and its YAML made; nothing written yet."""
    root = Path(output_dir or recipe.output_dir) / recipe.name
    planned = []
    for point in expand(recipe):
        paths = resolve_models(point)
        check_compatible(paths, point.base_model or point.models[0].model)
        config_dict = mergekit_dict(point, paths)
        where = f"[{point.label}] " if point.label else ""
        config = validate(config_dict, where)
        refusal = "fast_path: off" if point.fast_path == "off" else fast_path_refusal(point, paths)
        folder = _point_folder(root, point)
        planned.append(PlannedMerge(point, folder, to_yaml(config_dict), config, paths, refusal))
    return planned


def merge_folders(recipe: MergeRecipe, output_dir: str | Path | None = None) -> list[Path]:
    """The folder of every point of ``recipe`` (the recipe's own folder, or one per sweep point
    under it), without resolving any model: a plan before the inputs exist."""
    root = Path(output_dir or recipe.output_dir) / recipe.name
    return [_point_folder(root, point) for point in expand(recipe)]


def _point_folder(root: Path, point: MergePoint) -> Path:
    """A merge point's folder: the recipe's own, or its sweep label's under it."""
    return root / point.label if point.label else root


def run_mergekit(config, yaml_text: str, out: Path, seed: int) -> None:
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    options = MergeOptions(random_seed=seed, copy_tokenizer=True, quiet=True, lazy_unpickle=False,
                           trust_remote_code=False, safe_serialization=True)
    run_merge(config, str(out), options=options, config_source=yaml_text)


def execute(item: PlannedMerge) -> Path:
    folder = item.folder
    if is_finished(folder, "merge"):
        if (folder / "mergekit.yaml").read_text() == item.yaml_text:
            log.info(f"{folder}: already merged with this config")
            return folder
        raise RecipeError(f"{folder} holds a different finished merge; remove it or rename the recipe")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        # Never delete what someone put there (train refuses the same way).
        raise RecipeError(f"{folder} exists and is not a finished finharness merge; move it away")
    start = time.perf_counter()
    with building(folder, "merge") as build:
        work = build.path
        if item.fast_refusal is None:
            merge_in_lora_space(item.config, item.point, item.paths, work)
            route = "lora-space"
        else:
            log.info(f"{folder.name}: full-model MergeKit merge ({item.fast_refusal})")
            run_mergekit(item.config, item.yaml_text, work, item.point.seed)
            route = "mergekit"
        check_finite(work, str(folder))
        write_atomic(work / "mergekit.yaml", item.yaml_text)
        write_atomic(work / "merge_recipe.yaml", to_yaml(item.point.model_dump(mode="json")))
        seconds = time.perf_counter() - start
        _write_card(work, item, route, seconds)
        lineage = merge_lineage(item.paths, work)  # what its inputs were fine-tuned on, or "unknown"
        build.record = {
            "lineage": lineage,
            "method": item.point.method, "route": route, "fast_path_refused": item.fast_refusal,
            "seconds": seconds, "seed": item.point.seed,
            "models": {k: str(v) for k, v in item.paths.items()},
        }
    log.info(f"merged {folder} ({route}, {seconds:.1f} s)")
    return folder


ROUTES = {"lora-space": "LoRA-space path: MergeKit merge tasks on base + adapter deltas",
          "mergekit": "full-model `run_merge`"}


def _write_card(work: Path, item: PlannedMerge, route: str, seconds: float) -> None:
    p = item.point
    rows = "\n".join(f"| `{m.model}` | {m.weight if m.weight is not None else ''} | "
                     f"{m.density if m.density is not None else ''} |" for m in p.models)
    inputs = [hub_base_model(m.model) for m in p.models]
    write_atomic(
        work / "README.md",
        card_text(
            f"""# {item.folder.name}

Merged by `finharness merge` with MergeKit's `{p.method}` ({ROUTES[route]}), seed {p.seed},
dtype {p.dtype}, in {seconds:.1f} s.

Base: `{p.base_model}`

| model | weight | density |
|---|---|---|
{rows}

Global parameters: `{json.dumps(p.parameters)}`

## MergeKit configuration (`mergekit.yaml`, valid `mergekit-yaml` input)

```yaml
{item.yaml_text.rstrip()}
```
""",
            base_model=[b for b in [hub_base_model(p.base_model), *inputs] if b],
            library_name="transformers",
            tags=["finharness", "merge", "mergekit", p.method],
            base_model_relation="merge",
        ),
    )


def merge_recipe(recipe: MergeRecipe | str | Path, *, output_dir: str | Path | None = None,
                 dry_run: bool = False) -> list[Path]:
    if not isinstance(recipe, MergeRecipe):
        recipe = load_merge_recipe(recipe)
    items = plan(recipe, output_dir)
    if dry_run:
        for item in items:
            log.info(
                f"# {item.folder}  ({'lora-space' if item.fast_refusal is None else 'mergekit: ' + item.fast_refusal})"
            )
            log.info(item.yaml_text)
        return [item.folder for item in items]
    folders = [execute(item) for item in items]
    if len(folders) > 1:
        index = folders[0].parent / "sweep.json"
        write_atomic(index, json.dumps({"points": [str(f) for f in folders]}, indent=2))
        log.info(f"{len(folders)} merges; choose one on development rows (never a test document) with: "
                 "finharness merge <recipe> --select_on <tasks>")
    return folders
