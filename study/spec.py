"""A study folder (``recipes/studies/<study>/``), read and expanded into concrete steps.

A study is four short YAML files, one per kind of recipe:

    study.yaml   name, paper, the models, the table to render, what ``--full`` changes
    train.yaml   LoRA defaults and the training runs (each run is trained on every model)
    merge.yaml   merges of those runs (optional)
    eval.yaml    the task sets, docs per task, and the shots of each setting

Expansion turns them into ordinary ``finharness train`` / ``finharness merge`` recipes
(validated by those modules' own schemas, and written into the study's output folder so
any single step can be re-run by hand) and a list of evaluations.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from merges.recipe import MergeRecipe, Method, parse_merge_recipe
from plumbing.recipes import RecipeError, beside, read_recipe_yaml, validate_mapping
from plumbing.recipes import Strict as _Strict
from training.recipe import FticlSpec, LoraSpec, TaskSpec, TrainingSpec, TrainRecipe, parse_recipe


FILES = ("study.yaml", "train.yaml", "merge.yaml", "eval.yaml")
Name = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class StudyModel(_Strict):
    label: str = Name  # short name used in run folders and tables
    model: str = Field(description="embedded model name or checkpoint folder")
    prompt_format: Literal["base", "instruct"]


class TableSpec(_Strict):
    kind: Literal["seen_unseen", "views"]
    metric: str = "f1_weighted"  # seen_unseen: the per-task metric (views use each task type's own)
    resamples: int = Field(default=1000, gt=0)
    seed: int = 0


class DeviationSpec(_Strict):
    """How far each fine-tuned or merged checkpoint moved from its vanilla model
    (harness/deviation.py): weight change per layer, next-token KL on held-out text."""

    tasks: list[str] = Field(min_length=1, description="held-out text: test documents of these tasks")
    per_task: int = Field(default=8, gt=0, description="seeded documents per task")
    seed: int = 0


class StudyFile(_Strict):
    name: str = Name
    paper: str = ""
    output_dir: str = "studies"
    models: list[StudyModel] = Field(min_length=1)
    table: TableSpec
    leaderboard: bool = True  # submit every scored checkpoint to the board at the end
    deviation: DeviationSpec | None = None
    full: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="`--full`: per file (train, merge, eval), values that replace the defaults, "
        "deep-merged; the papers' sizes for a GPU machine. `train.samples` there replaces every "
        "task's count")


class TrainRun(_Strict):
    name: str = Name
    tasks: list[TaskSpec] = Field(min_length=1)
    fticl: FticlSpec = FticlSpec()
    models: list[str] | None = Field(default=None, description="study model labels; None: every model")
    kind: Literal["single", "multi"] = "single"
    covers: list[str] = Field(default_factory=list,
                              description="seen tasks this single-task run is the specialist for (tables)")


class TrainFile(_Strict):
    samples: int | None = Field(default=None, gt=0, description="per task, where a run's task does not say")
    lora: LoraSpec = LoraSpec()
    training: TrainingSpec = TrainingSpec()
    seed: int = 42
    seeds: list[int] | None = Field(
        default=None, min_length=1,
        description="training seeds: every run (and every merge of runs) once per seed; the tables "
                    "bootstrap over seeds and documents together")
    runs: list[TrainRun] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_seeds(self):
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: a seed is listed twice: {self.seeds}")
        return self

    def training_seeds(self) -> list[int]:
        return self.seeds or [self.seed]


class MergeEntry(_Strict):
    name: str = Name
    model: str = Field(description="the study model (label) merged into, the vanilla base")
    runs: list[str] = Field(min_length=1, description="training runs (names) of that model")
    method: Method
    weight: float | None = None
    density: float | None = None
    parameters: dict[str, float | bool] = {}
    seed: int = 0


class MergeFile(_Strict):
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    merges: list[MergeEntry] = []


class EvalSet(_Strict):
    name: str | None = Field(default=None, description="shown on the leaderboard; default set<i>")
    tasks: list[str] = Field(min_length=1)
    limit: int | None = Field(default=None, gt=0)
    few_shot: int = Field(default=0, ge=0, description="shots of the few-shot setting")
    settings: list[Literal["zero-shot", "few-shot"]] = Field(
        default=["zero-shot", "few-shot"], description="the settings this set is scored in")


class EvalFile(_Strict):
    sets: list[EvalSet] = Field(min_length=1)
    vanilla: list[Literal["zero-shot", "few-shot"]] = ["zero-shot", "few-shot"]
    trained: list[Literal["zero-shot", "few-shot"]] = ["zero-shot"]
    merged: list[Literal["zero-shot", "few-shot"]] = ["zero-shot"]
    batch_size: int | str = 8
    include_paths: list[str] = Field(default_factory=list,
                                     description="task folders the sets may name, beside the packaged suite "
                                                 "(relative to the study folder)")

    @model_validator(mode="after")
    def _few_shot_given(self):
        if any("few-shot" in s for s in (self.vanilla, self.trained, self.merged)):
            if all(e.few_shot == 0 for e in self.sets):
                raise ValueError("a few-shot setting is asked for, but no set has few_shot > 0")
        return self


class Checkpoint(_Strict):
    """A model the study scores: vanilla, fine-tuned or merged."""

    label: str  # e.g. smollm2/ft-fpb
    model: str  # StudyModel.label
    role: Literal["vanilla", "single", "multi", "merged"]
    path: str  # embedded name or folder
    recipe: str | None = None  # the recipe file that made it
    trained_on: list[str] = []
    covers: list[str] = []
    fticl: int = 0
    run: str = ""  # the training run or merge name
    seed: int | None = None  # training seed (None: vanilla); a study with several seeds has a checkpoint per seed


def deviation_file(root: str | Path, point: Checkpoint) -> Path:
    return Path(root) / "deviation" / f"{point.label.replace('/', '--')}.json"


class EvalStep(_Strict):
    checkpoint: Checkpoint
    setting: Literal["zero-shot", "few-shot"]
    set_index: int
    set_name: str
    tasks: list[str]
    limit: int | None
    shots: int
    folder: str  # results folder
    include_paths: list[str] = []


class Study(_Strict):
    folder: str
    root: str  # output folder of this study
    spec: StudyFile
    train: TrainFile
    merge: MergeFile
    eval: EvalFile
    full: bool
    train_recipes: list[TrainRecipe]
    merge_recipes: list[MergeRecipe]
    checkpoints: list[Checkpoint]
    evals: list[EvalStep]


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def _read(folder: Path, name: str, required: bool) -> dict:
    path = folder / name
    if not path.is_file():
        if required:
            raise RecipeError(f"{path}: missing (a study folder holds {', '.join(FILES)})")
        return {}
    data = read_recipe_yaml(path)
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: expected a mapping at the top level")
    return data


def load_study(folder: str | Path, full: bool = False, output_dir: str | Path | None = None) -> Study:
    """Read, check and expand a study folder. Nothing is written."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecipeError(f"{folder}: not a study folder")
    spec = validate_mapping(StudyFile, _read(folder, "study.yaml", True), str(folder / "study.yaml"))
    raw = {name: _read(folder, f"{name}.yaml", name != "merge") for name in ("train", "merge", "eval")}
    unknown = set(spec.full) - set(raw)
    if unknown:
        raise RecipeError(f"{folder / 'study.yaml'}: full: unknown file(s) {sorted(unknown)} (train, merge, eval)")
    if full:
        raw = {name: _deep_merge(data, spec.full.get(name, {})) for name, data in raw.items()}
    if full and "samples" in spec.full.get("train", {}):
        # The papers' sizes replace every task's count, not only the defaulted ones.
        for run in raw["train"].get("runs", []):
            for task in run.get("tasks", []):
                if isinstance(task, dict):
                    task.pop("samples", None)
    train = validate_mapping(TrainFile, raw["train"], str(folder / "train.yaml"))
    merge = validate_mapping(MergeFile, raw["merge"], str(folder / "merge.yaml"))
    evals = validate_mapping(EvalFile, raw["eval"], str(folder / "eval.yaml"))
    evals = evals.model_copy(update={"include_paths": beside(folder, evals.include_paths)})
    root = Path(output_dir or spec.output_dir) / (spec.name + ("-full" if full else ""))

    models = {m.label: m for m in spec.models}
    if len(models) != len(spec.models):
        raise RecipeError(f"{folder / 'study.yaml'}: models: two models share a label")
    train_recipes, checkpoints = [], [
        Checkpoint(label=f"{m.label}", model=m.label, role="vanilla", path=m.model) for m in spec.models]
    seeds = train.training_seeds()
    # One seed keeps the plain names; several give every run and merge a -s<seed> suffix.
    suffix = (lambda s: f"-s{s}") if len(seeds) > 1 else (lambda s: "")
    runs_of: dict[tuple[str, str, int], Checkpoint] = {}
    for run in train.runs:
        for label in run.models or list(models):
            if label not in models:
                raise RecipeError(f"{folder / 'train.yaml'}: runs.{run.name}.models: unknown model {label!r} "
                                  f"(study models: {sorted(models)})")
            model = models[label]
            tasks = [t if t.samples or train.samples is None else t.model_copy(update={"samples": train.samples})
                     for t in run.tasks]
            for seed in seeds:
                recipe = parse_recipe({
                    "name": f"{label}-{run.name}{suffix(seed)}", "base_model": model.model,
                    "prompt_format": model.prompt_format,
                    "tasks": [t.model_dump() for t in tasks], "fticl": run.fticl.model_dump(),
                    "lora": train.lora.model_dump(), "training": train.training.model_dump(), "seed": seed,
                    "output_dir": str(root / "runs"),
                }, f"{folder / 'train.yaml'} (run {run.name}, model {label})")
                train_recipes.append(recipe)
                point = Checkpoint(label=f"{label}/{run.name}{suffix(seed)}", model=label, role=run.kind,
                                   path=str(recipe.run_dir()),
                                   recipe=str(root / "recipes" / "train" / f"{recipe.name}.yaml"),
                                   trained_on=[t.name for t in run.tasks], covers=run.covers, fticl=run.fticl.k,
                                   run=run.name, seed=seed)
                checkpoints.append(point)
                runs_of[(label, run.name, seed)] = point

    merge_recipes = []
    for entry in merge.merges:
        if entry.model not in models:
            raise RecipeError(f"{folder / 'merge.yaml'}: merges.{entry.name}.model: unknown model {entry.model!r}")
        missing = [r for r in entry.runs if (entry.model, r, seeds[0]) not in runs_of]
        if missing:
            raise RecipeError(f"{folder / 'merge.yaml'}: merges.{entry.name}.runs: no training run {missing} "
                              f"for model {entry.model}")
        extra = {k: v for k, v in (("weight", entry.weight), ("density", entry.density)) if v is not None}
        for seed in seeds:  # the runs of one training seed merged together
            recipe = parse_merge_recipe({
                "name": f"{entry.model}-{entry.name}{suffix(seed)}", "base_model": models[entry.model].model,
                "method": entry.method,
                "models": [{"model": runs_of[(entry.model, r, seed)].path, **extra} for r in entry.runs],
                "parameters": entry.parameters, "dtype": merge.dtype, "seed": entry.seed,
                "output_dir": str(root / "merges"),
            }, f"{folder / 'merge.yaml'} (merge {entry.name})")
            merge_recipes.append(recipe)
            checkpoints.append(Checkpoint(
                label=f"{entry.model}/{entry.name}{suffix(seed)}", model=entry.model, role="merged",
                path=str(Path(recipe.output_dir) / recipe.name), run=entry.name, seed=seed,
                recipe=str(root / "recipes" / "merge" / f"{recipe.name}.yaml"),
                trained_on=sorted({t for r in entry.runs for t in runs_of[(entry.model, r, seed)].trained_on})))

    steps = []
    for point in checkpoints:
        settings = {"vanilla": evals.vanilla, "merged": evals.merged}.get(point.role, evals.trained)
        for setting in settings:
            for i, eval_set in enumerate(evals.sets):
                shots = eval_set.few_shot if setting == "few-shot" else 0
                if setting not in eval_set.settings or (setting == "few-shot" and shots == 0):
                    continue
                steps.append(EvalStep(
                    checkpoint=point, setting=setting, set_index=i, set_name=eval_set.name or f"set{i}",
                    tasks=eval_set.tasks, limit=eval_set.limit,
                    shots=shots, folder=str(root / "evals" / point.label.replace("/", "--") / f"{setting}-set{i}"),
                    include_paths=evals.include_paths))
    return Study(folder=str(folder), root=str(root), spec=spec, train=train, merge=merge, eval=evals, full=full,
                 train_recipes=train_recipes, merge_recipes=merge_recipes, checkpoints=checkpoints, evals=steps)
