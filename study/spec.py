"""A study folder (``recipes/studies/<study>/``), read and expanded into concrete steps.

A study is four short YAML files, one per kind of recipe:

    study.yaml   name, paper, the models, the table to render, what ``--full`` changes
                 (sizes, settings, and the models themselves: the papers' Hub ids)
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
from typing import Any, Literal, Mapping

from pydantic import Field, model_validator

from fin_tasks.index import group_members, task_manager, task_variant
from merges.recipe import MergeRecipe, Method, parse_merge_recipe
from plumbing.recipes import RecipeError, beside, read_recipe_yaml, validate_mapping
from plumbing.recipes import Strict as _Strict
from plumbing.seeds import check_seeds, seeded_name
from plumbing.vocabulary import DEFAULT_TRAINING_SEED, Dtype, GenerationBaseline, PromptFormat, RowKind, TrainingMethod
from training.recipe import FticlSpec, LoraSpec, TaskSpec, TrainingSpec, TrainRecipe, parse_recipe


FILES = ("study.yaml", "train.yaml", "merge.yaml", "eval.yaml")
Name = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class StudyModel(_Strict):
    label: str = Name  # the model's slot (base, instruct): run folders, tables, merge.yaml and claims.yaml name it
    model: str = Field(description="embedded model name, checkpoint folder, or Hub id org/name (--online)")
    prompt_format: PromptFormat


class TableSpec(_Strict):
    kind: Literal["seen_unseen", "views"]
    metric: str = "f1_weighted"  # seen_unseen: the per-task metric (views use each task type's own)
    generation_baseline: GenerationBaseline = Field(
        default="none", description="lead: ROUGE and BLEU are normalized to the input's first sentence(s), as "
                                    "classification scores are to the best trivial label (none: raw, as studies "
                                    "run before 2026-12-07 read them)")
    resamples: int = Field(default=1000, gt=0)
    seed: int = 0


class DeviationSpec(_Strict):
    """How far each fine-tuned or merged checkpoint moved from its vanilla model
    (harness/deviation.py): weight change per layer, KL on teacher-forced reference answers
    with the EOS shift apart."""

    tasks: list[str] | None = Field(default=None, min_length=1,
                                    description="test documents of these tasks; default: each checkpoint's own "
                                                "training tasks (in-domain)")
    per_task: int = Field(default=8, gt=0, description="seeded documents per task")
    seed: int = 0


class StudyFile(_Strict):
    name: str = Name
    paper: str = ""
    output_dir: str = "studies"
    models: list[StudyModel] = Field(min_length=1)
    table: TableSpec
    leaderboard: bool = True  # submit every scored checkpoint to the board at the end
    prompts: Literal["finben", "paper"] = Field(
        default="finben", description="the financial tasks' prompt wording for training and scoring: FinBen's, "
        "or arXiv 2411.02476's formats (Alpaca for base models, 'sentence: ... label:' for instruct ones)")
    deviation: DeviationSpec | None = None
    one_family: bool = Field(
        default=False, description="the study compares its models as one family (base vs instruct of the same "
        "model, as arXiv 2411.02476 does): models a user supplies must share an architecture; the defaults "
        "that do not are named in every table")
    full: dict[str, Any] = Field(
        default_factory=dict,
        description="`--full`: per file (train, merge, eval), values that replace the defaults, "
        "deep-merged; the papers' sizes for a GPU machine. `train.samples` there replaces every "
        "task's count. `models:` replaces the models (the same labels, other checkpoints)")


class TrainRun(_Strict):
    name: str = Name
    tasks: list[TaskSpec] = Field(min_length=1)
    fticl: FticlSpec = FticlSpec()
    models: list[str] | None = Field(default=None, description="study model labels; None: every model")
    kind: Literal["single", "multi"] = "single"
    after: str | None = Field(
        default=None, description="a run listed before this one: this run fine-tunes that run's model (the same "
                                  "study model and seed) instead of the study model, as sequential fine-tuning does. "
                                  "Its lineage holds both runs' texts; its trained tasks (the gates') are its own")
    covers: list[str] = Field(default_factory=list,
                              description="seen tasks this single-task run is the specialist for (tables)")
    training: dict[str, Any] = Field(
        default_factory=dict, description="this run's changes to train.yaml's training block (e.g. {lr: 2.0e-3}: "
                                          "a rate chosen for its own task); checked as the block is")
    seeds: list[int] | None = Field(
        default=None, min_length=1,
        description="this run's training seeds instead of train.yaml's: a claim whose variance is mostly seeds "
                    "gets more of them for its own runs only (a run it comes after, and a run merged with it, "
                    "must have every one of them)")

    @model_validator(mode="after")
    def _distinct_run_seeds(self):
        check_seeds(False, self.seeds)
        return self


class TrainFile(_Strict):
    samples: int | None = Field(default=None, gt=0, description="per task, where a run's task does not say")
    method: TrainingMethod = "lora"
    lora: LoraSpec = LoraSpec()
    training: TrainingSpec = TrainingSpec()
    seed: int = DEFAULT_TRAINING_SEED
    seeds: list[int] | None = Field(
        default=None, min_length=1,
        description="training seeds: every run (and every merge of runs) once per seed; the tables "
                    "bootstrap over seeds and documents together")
    runs: list[TrainRun] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_seeds(self):
        check_seeds("seed" in self.model_fields_set, self.seeds)  # the rule `finharness train` applies
        return self

    def training_seeds(self) -> list[int]:
        return self.seeds or [self.seed]


class MergeSelection(_Strict):
    """A merge weight chosen on development rows, before any test document is scored."""

    weights: list[float] = Field(min_length=2, description="the candidate weights (every run gets the same)")
    tasks: list[str] = Field(min_length=1, description="scored on their development rows: validation rows that "
                                                       "repeat no test document (merges/select.py)")
    metric: str = "f1_macro"
    limit: int | None = Field(default=50, gt=0, description="development documents per task")


class MergeEntry(_Strict):
    name: str = Name
    model: str = Field(description="the study model (label) merged into, the vanilla base")
    runs: list[str] = Field(min_length=1, description="training runs (names) of that model")
    method: Method
    weight: float | None = None
    density: float | None = None
    parameters: dict[str, float | bool] = {}
    seed: int = 0
    select: MergeSelection | None = Field(
        default=None, description="choose the weight on development rows: each candidate is merged from the first "
                                  "training seed's runs and scored there, and every seed is merged at the best one")

    @model_validator(mode="after")
    def _one_weight(self):
        if self.select is not None and self.weight is not None:
            raise ValueError("give weight or select, not both (select chooses the weight)")
        return self


class TunedMerge(_Strict):
    """A merge entry whose weight ``select`` chooses: its candidates (one sweep recipe on the
    first seed's runs), where the choice is written, and each seed's merge without its weight."""

    entry: str
    sweep: str = Field(description="name of the candidates' merge recipe (study.merge_recipes)")
    selection: str = Field(description="the choice, written by merges/select.py: <sweep folder>/selection.json")
    select: MergeSelection
    recipes: list[dict[str, Any]] = Field(description="per seed: the merge recipe, its models' weight left out")

    def recipe(self, i: int, weight: float) -> MergeRecipe:
        """The ``i``-th seed's merge at the chosen weight."""
        data = copy.deepcopy(self.recipes[i])
        data["models"] = [{**m, "weight": weight} for m in data["models"]]
        return parse_merge_recipe(data, f"merge {self.entry} (weight {weight:g}, chosen on development rows)")


class MergeFile(_Strict):
    dtype: Dtype = "float32"
    merges: list[MergeEntry] = []


class EvalSet(_Strict):
    name: str | None = Field(default=None, description="shown on the leaderboard; default set<i>")
    tasks: list[str] = Field(min_length=1)
    limit: int | None = Field(default=None, gt=0)
    few_shot: int | list[int] = Field(
        default=0, description="shots of the few-shot setting; a list is a shot grid (settings '1-shot', "
        "'5-shot', ... instead of 'few-shot')")
    settings: list[Literal["zero-shot", "few-shot"]] = Field(
        default=["zero-shot", "few-shot"], description="the settings this set is scored in")
    split: Literal["test", "development"] = Field(
        default="test", description="development: rows for the claims' gates, never a test document (each "
        "task's validation rows that repeat no test document; a task without a validation split: test-split "
        "documents outside every test set's slice); no table, claim or board entry reads them")
    roles: list[RowKind] | None = Field(
        default=None, description="the checkpoints that score this set (default: every one its settings reach)")
    runs: list[str] | None = Field(
        default=None, description="the training runs and merges whose checkpoints score this set (default: every "
                                  "one); the vanilla model scores it unless roles leaves it out. A task scored by "
                                  "some runs only has a blank cell for the others")


    @model_validator(mode="after")
    def _shots(self):
        grid = self.few_shot if isinstance(self.few_shot, list) else [self.few_shot]
        if any(k < 0 for k in grid) or (isinstance(self.few_shot, list) and (not grid or 0 in grid)):
            raise ValueError(f"few_shot: {self.few_shot}: shot counts are positive (zero-shot is its own setting)")
        if len(set(grid)) != len(grid):
            raise ValueError(f"few_shot: {self.few_shot}: a shot count is listed twice")
        return self

    def shot_grid(self) -> list[int]:
        return self.few_shot if isinstance(self.few_shot, list) else [self.few_shot] if self.few_shot else []

    def few_shot_settings(self) -> list[tuple[str, int]]:
        """(setting name, shots): the grid's first count is the 'few-shot' setting (what claims and
        the CPU default name), every further count its own 'k-shot' setting."""
        grid = self.shot_grid()
        return [("few-shot", grid[0]), *((f"{k}-shot", k) for k in grid[1:])] if grid else []


def setting_shots(setting: str, study_sets: list["EvalSet"]) -> int:
    """Shots of a setting name, for ordering: 0, k of 'k-shot', or the largest first count of the sets."""
    if setting == "zero-shot":
        return 0
    if setting.endswith("-shot") and setting[:-5].isdigit():
        return int(setting[:-5])
    return max((s.shot_grid()[0] for s in study_sets if s.shot_grid()), default=0)


def setting_name(setting: str, study_sets: list["EvalSet"]) -> str:
    """As tables show it: 'zero-shot', 'few-shot (1)' (several sets: 'few-shot (2/1)'), '5-shot'."""
    if setting != "few-shot":
        return setting
    firsts = dict.fromkeys(str(s.shot_grid()[0]) for s in study_sets if s.shot_grid())
    return f"few-shot ({'/'.join(firsts)})"


class EvalFile(_Strict):
    sets: list[EvalSet] = Field(min_length=1)
    vanilla: list[Literal["zero-shot", "few-shot"]] = ["zero-shot", "few-shot"]
    trained: list[Literal["zero-shot", "few-shot"]] = ["zero-shot"]
    merged: list[Literal["zero-shot", "few-shot"]] = ["zero-shot"]
    batch_size: int | str = 8
    scoring: Literal["loglik", "generate"] = Field(
        default="loglik", description="financial tasks scored by the log-likelihood of each label, or by "
        "generating at most 5 tokens and reading the first label in them (as arXiv 2411.02476 does)")
    include_paths: list[str] = Field(default_factory=list,
                                     description="task folders the sets may name, beside the packaged suite "
                                                 "(relative to the study folder)")

    @model_validator(mode="after")
    def _few_shot_given(self):
        if any("few-shot" in s for s in (self.vanilla, self.trained, self.merged)):
            if all(not e.few_shot_settings() for e in self.sets):
                raise ValueError("a few-shot setting is asked for, but no set has few_shot > 0")
        return self


class Checkpoint(_Strict):
    """A model the study scores: vanilla, fine-tuned or merged."""

    label: str  # e.g. smollm2/ft-fpb
    model: str  # StudyModel.label
    role: RowKind
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
    setting: str  # "zero-shot", "few-shot", or "<k>-shot" for any k of a grid (open: no Literal)
    split: Literal["test", "development"] = "test"
    development_outside: list[int | None] = []  # the test sets' limits a development set stays outside
    set_index: int
    set_name: str
    tasks: list[str]
    limit: int | None
    shots: int
    folder: str  # results folder
    include_paths: list[str] = []


class Study(_Strict):
    folder: str
    models_supplied: bool = False  # the models are not the study's CPU defaults (--full models or --model)
    root: str  # output folder of this study
    spec: StudyFile
    train: TrainFile
    merge: MergeFile
    eval: EvalFile
    full: bool
    train_recipes: list[TrainRecipe]
    merge_recipes: list[MergeRecipe]
    tuned: list[TunedMerge] = []  # merges whose weight development rows choose (after merge_recipes)
    checkpoints: list[Checkpoint]
    evals: list[EvalStep]

    def trained_model(self, recipe: TrainRecipe) -> str:
        """The study model (label) a training recipe fine-tunes, directly or after another run."""
        return next(c.model for c in self.checkpoints if c.path == str(recipe.run_dir()))


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


def _replace_models(
    spec: StudyFile, where: str, full: bool, models: Mapping[str, str] | None
) -> tuple[StudyFile, bool]:
    """The study's models after ``full: models:`` and ``--model LABEL=MODEL`` (same labels:
    merge.yaml and claims.yaml name them)."""
    current = list(spec.models)
    labels = [m.label for m in current]
    supplied = False
    if full and "models" in spec.full:
        replaced = [validate_mapping(StudyModel, m, f"{where}: full.models") for m in spec.full["models"] or []]
        if not set(labels) <= {m.label for m in replaced}:
            raise RecipeError(f"{where}: full.models: labels {sorted(m.label for m in replaced)} must include the "
                              f"study's labels {sorted(labels)} (train, merge and claims files name them; the full "
                              "study may add models the CPU size leaves out)")
        current, supplied = replaced, True
    for label, model in (models or {}).items():
        if label not in labels:
            raise RecipeError(f"--model {label}={model}: the study has no model {label!r} (its labels: {labels})")
        current = [m.model_copy(update={"model": model}) if m.label == label else m for m in current]
        supplied = True
    return spec.model_copy(update={"models": current}), supplied


def load_study(folder: str | Path, full: bool = False, output_dir: str | Path | None = None,
               models: Mapping[str, str] | None = None) -> Study:
    """Read, check and expand a study folder. Nothing is written. ``models`` replaces the
    checkpoint of a model label (``--model instruct=org/name``)."""
    folder = Path(folder)
    spec, supplied, train, merge, evals = _read_study_files(folder, full, models)
    root = Path(output_dir or spec.output_dir) / (spec.name + ("-full" if full else ""))
    by_label = {m.label: m for m in spec.models}
    if len(by_label) != len(spec.models):
        raise RecipeError(f"{folder / 'study.yaml'}: models: two models share a label")
    vanilla = [Checkpoint(label=f"{m.label}", model=m.label, role="vanilla", path=m.model) for m in spec.models]
    train_recipes, trained = _training_runs(folder, spec, train, by_label, root)
    merge_recipes, merged, tuned = _merges(folder, merge, by_label, trained, train.training_seeds(), root)
    checkpoints = vanilla + list(trained.values()) + merged
    return Study(
        folder=str(folder),
        root=str(root),
        spec=spec,
        models_supplied=supplied,
        train=train,
        merge=merge,
        eval=evals,
        full=full,
        train_recipes=train_recipes,
        merge_recipes=merge_recipes,
        tuned=tuned,
        checkpoints=checkpoints,
        evals=_eval_steps(folder, checkpoints, evals, spec, by_label, root),
    )


def _read_study_files(folder: Path, full: bool, models: Mapping[str, str] | None):
    """study.yaml, train.yaml, merge.yaml and eval.yaml checked, with ``full:`` applied when asked
    and the models replaced; returns (spec, supplied models, train, merge, eval)."""
    if not folder.is_dir():
        raise RecipeError(f"{folder}: not a study folder")
    spec = validate_mapping(StudyFile, _read(folder, "study.yaml", True), str(folder / "study.yaml"))
    raw = {name: _read(folder, f"{name}.yaml", name != "merge") for name in ("train", "merge", "eval")}
    unknown = set(spec.full) - set(raw) - {"models", "prompts"}
    if unknown:
        raise RecipeError(f"{folder / 'study.yaml'}: full: unknown key(s) {sorted(unknown)} "
                          "(train, merge, eval, models, prompts)")
    if full and "prompts" in spec.full:
        spec = validate_mapping(StudyFile, {**spec.model_dump(mode="json"), "prompts": spec.full["prompts"]},
                                f"{folder / 'study.yaml'} (full.prompts)")
    bad = [k for k in set(spec.full) & set(raw) if not isinstance(spec.full[k], dict)]
    if bad:
        raise RecipeError(f"{folder / 'study.yaml'}: full.{bad[0]}: expected a mapping of that file's keys")
    spec, supplied = _replace_models(spec, str(folder / "study.yaml"), full, models)
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
    return spec, supplied, train, merge, evals


def _untrained(points: Mapping[tuple[str, str, int], Checkpoint], model: str, runs: list[str],
               seeds: list[int]) -> tuple[list[str], list[str]]:
    """The runs a step needs that were never trained for ``model``, and the "run (seed s)" checkpoints
    missing among the others (a sequential run or a merge needs each seed's own)."""
    trained = {run for (label, run, _) in points if label == model}
    absent = [r for r in runs if r not in trained]
    gaps = [f"{r} (seed {s})" for r in runs if r not in absent for s in seeds if (model, r, s) not in points]
    return absent, gaps


def _training_runs(folder: Path, spec: StudyFile, train: TrainFile, models: Mapping[str, Any],
                   root: Path) -> tuple[list, dict[tuple[str, str, int], Checkpoint]]:
    """One training recipe and checkpoint per run, model and seed (keyed by those three)."""
    seeds = train.training_seeds()
    recipes, points = [], {}
    for run in train.runs:
        run_seeds = run.seeds or seeds
        for label in run.models or list(models):
            if label not in models:
                raise RecipeError(f"{folder / 'train.yaml'}: runs.{run.name}.models: unknown model {label!r} "
                                  f"(study models: {sorted(models)})")
            model = models[label]
            absent, gaps = _untrained(points, label, [run.after] if run.after else [], run_seeds)
            if absent:
                raise RecipeError(f"{folder / 'train.yaml'}: runs.{run.name}.after: {run.after!r} is not a run listed "
                                  f"before it for model {label} (sequential fine-tuning starts from a finished run)")
            if gaps:
                raise RecipeError(f"{folder / 'train.yaml'}: runs.{run.name}.seeds: {', '.join(gaps)} not trained "
                                  f"(each seed fine-tunes that run's model of the same seed)")
            tasks = [t if t.samples or train.samples is None else t.model_copy(update={"samples": train.samples})
                     for t in run.tasks]
            # The paper's formats train on the same documents, in the model's prompt format.
            tasks = [t.model_copy(update={"name": task_variant(t.name, model.prompt_format, spec.prompts)})
                     for t in tasks]
            for seed in run_seeds:
                # One seed keeps the plain names; several give every run and merge a -s<seed> suffix.
                recipe = parse_recipe({
                    "name": seeded_name(f"{label}-{run.name}", seed, run_seeds),
                    "base_model": points[(label, run.after, seed)].path if run.after else model.model,
                    "prompt_format": model.prompt_format,
                    "tasks": [t.model_dump() for t in tasks], "fticl": run.fticl.model_dump(),
                    "method": train.method, **({"lora": train.lora.model_dump()} if train.method == "lora" else {}),
                    "training": {**train.training.model_dump(), **run.training}, "seed": seed,
                    "output_dir": str(root / "runs"),
                }, f"{folder / 'train.yaml'} (run {run.name}, model {label})")
                recipes.append(recipe)
                points[(label, run.name, seed)] = Checkpoint(
                    label=seeded_name(f"{label}/{run.name}", seed, run_seeds), model=label, role=run.kind,
                    path=str(recipe.run_dir()), recipe=str(root / "recipes" / "train" / f"{recipe.name}.yaml"),
                    trained_on=[t.name for t in run.tasks], covers=run.covers, fticl=run.fticl.k,
                    run=run.name, seed=seed)
    return recipes, points


def _merges(folder: Path, merge: MergeFile, models: Mapping[str, Any],
            runs_of: Mapping[tuple[str, str, int], Checkpoint], seeds: list[int],
            root: Path) -> tuple[list, list[Checkpoint], list[TunedMerge]]:
    """One merge recipe and checkpoint per merge and training seed (that seed's runs merged); for
    a merge whose weight ``select`` chooses, the candidates' sweep recipe and a :class:`TunedMerge`."""
    recipes, points, tuned = [], [], []
    for entry in merge.merges:
        if entry.model not in models:
            raise RecipeError(f"{folder / 'merge.yaml'}: merges.{entry.name}.model: unknown model {entry.model!r}")
        absent, gaps = _untrained(runs_of, entry.model, entry.runs, seeds)
        if absent:
            raise RecipeError(f"{folder / 'merge.yaml'}: merges.{entry.name}.runs: no training run {absent} "
                              f"for model {entry.model}")
        if gaps:
            raise RecipeError(f"{folder / 'merge.yaml'}: merges.{entry.name}.runs: {', '.join(gaps)} not trained "
                              f"(a merge is made per train.yaml seed, from that seed's runs)")
        extra = {k: v for k, v in (("weight", entry.weight), ("density", entry.density)) if v is not None}
        where = f"{folder / 'merge.yaml'} (merge {entry.name})"

        def mapping(name: str, seed: int) -> dict[str, Any]:
            return {"name": name, "base_model": models[entry.model].model, "method": entry.method,
                    "models": [{"model": runs_of[(entry.model, r, seed)].path, **extra} for r in entry.runs],
                    "parameters": entry.parameters, "dtype": merge.dtype, "seed": entry.seed,
                    "output_dir": str(root / "merges")}

        finals = []
        for seed in seeds:
            data = mapping(seeded_name(f"{entry.model}-{entry.name}", seed, seeds), seed)
            if entry.select is None:
                recipes.append(parse_merge_recipe(data, where))
            else:  # checked now with a candidate weight; merged at the chosen one
                weighted = [{**m, "weight": entry.select.weights[0]} for m in data["models"]]
                parse_merge_recipe({**data, "models": weighted}, where)
            finals.append(data)
            points.append(Checkpoint(
                label=seeded_name(f"{entry.model}/{entry.name}", seed, seeds), model=entry.model, role="merged",
                path=str(root / "merges" / data["name"]), run=entry.name, seed=seed,
                recipe=str(root / "recipes" / "merge" / f"{data['name']}.yaml"),
                trained_on=sorted({t for r in entry.runs for t in runs_of[(entry.model, r, seed)].trained_on})))
        if entry.select is not None:
            sweep = parse_merge_recipe({**mapping(f"{entry.model}-{entry.name}-candidates", seeds[0]),
                                        "sweep": {"weight": entry.select.weights}}, where)
            recipes.append(sweep)
            tuned.append(TunedMerge(entry=entry.name, sweep=sweep.name, select=entry.select, recipes=finals,
                                    selection=str(root / "merges" / sweep.name / "selection.json")))
    return recipes, points, tuned


def _members(tasks: list[str], index: Mapping) -> list[str]:
    """The tasks a set's names stand for (groups and tags expanded; an unknown name as itself)."""
    found = []
    for name in tasks:
        try:
            found += group_members(name, index)
        except ValueError:  # named wrongly: the evaluation says so, naming the file
            found.append(name)
    return list(dict.fromkeys(found))


def _eval_steps(folder: Path, checkpoints: list[Checkpoint], evals: EvalFile, spec: StudyFile,
                models: Mapping[str, Any], root: Path) -> list[EvalStep]:
    """One evaluation per checkpoint, setting (zero-shot, each few-shot count) and task set."""
    steps = []
    known = {p.run for p in checkpoints if p.run}
    for i, eval_set in enumerate(evals.sets):
        unknown = sorted(set(eval_set.runs or ()) - known)
        if unknown:
            raise RecipeError(f"{folder / 'eval.yaml'}: sets[{i}].runs: {', '.join(unknown)} is no training run or "
                              f"merge of this study (known: {', '.join(sorted(known))})")
    limits: dict[str, dict[int | None, list[int]]] = {}  # task -> limit -> test sets
    if len({s.limit for s in evals.sets if s.split == "test"}) > 1:  # one limit for all: nothing to expand
        index = task_manager(evals.include_paths).task_index
        for i, eval_set in enumerate(evals.sets):
            for task in _members(eval_set.tasks, index) if eval_set.split == "test" else ():
                limits.setdefault(task, {}).setdefault(eval_set.limit, []).append(i)
    twice = {task: by_limit for task, by_limit in limits.items() if len(by_limit) > 1}
    if twice:  # every row of a task is read on the same documents (study.cells.Bootstrap)
        task, by_limit = sorted(twice.items())[0]
        found = "; ".join(f"limit {limit} in sets {', '.join(map(str, sets))}" for limit, sets in by_limit.items())
        raise RecipeError(f"{folder / 'eval.yaml'}: {task} is scored at two limits ({found}): the tables read "
                          f"every row of a task on the same documents, so give it one limit")
    # A development set stays outside the documents of every test set (their slices at these limits).
    outside = sorted({s.limit for s in evals.sets if s.split == "test"}, key=lambda v: (v is None, v or 0))
    for point in checkpoints:
        settings = {"vanilla": evals.vanilla, "merged": evals.merged}.get(point.role, evals.trained)
        for setting in settings:
            for i, eval_set in enumerate(evals.sets):
                scored_by = ((eval_set.roles is None or point.role in eval_set.roles)
                             and (eval_set.runs is None or point.role == "vanilla" or point.run in eval_set.runs))
                if setting not in eval_set.settings or not scored_by:
                    continue
                variants = [("zero-shot", 0)] if setting == "zero-shot" else eval_set.few_shot_settings()
                fmt = models[point.model].prompt_format
                tasks = [task_variant(t, fmt, spec.prompts, evals.scoring) for t in eval_set.tasks]
                for name, shots in variants:
                    steps.append(EvalStep(
                        checkpoint=point, setting=name, set_index=i, set_name=eval_set.name or f"set{i}",
                        tasks=tasks, limit=eval_set.limit, shots=shots,
                        folder=str(root / "evals" / point.label.replace("/", "--") / f"{name}-set{i}"),
                        include_paths=evals.include_paths, split=eval_set.split,
                        development_outside=outside if eval_set.split == "development" else []))
    return steps


def model_families(study: Study) -> dict[str, str | None]:
    """Each model label's architecture (config ``model_type``), from its checkpoint."""
    from plumbing.checkpoints import architecture, resolve_checkpoint

    return {m.label: architecture(resolve_checkpoint(m.model)) for m in study.spec.models}


def family_note(families: Mapping[str, str | None]) -> str:
    """One line when the study's models are of different families ('' when one family)."""
    if len(set(families.values())) < 2:
        return ""
    named = "; ".join(f"{label}: {family}" for label, family in families.items())
    return (f"The models are of different families ({named}): a contrast between their rows is also a "
            "contrast of architecture, size and pre-training data, not only of instruction tuning.")


def check_families(study: Study) -> None:
    """Models a user supplied to a one-family study must share an architecture."""
    if not (study.spec.one_family and study.models_supplied):
        return
    families = model_families(study)
    if len(set(families.values())) > 1:
        raise RecipeError(f"{Path(study.folder) / 'study.yaml'}: one_family: the supplied models are of different "
                          f"families ({', '.join(f'{k}: {v}' for k, v in families.items())}); use the base and "
                          "instruct checkpoints of one model")
