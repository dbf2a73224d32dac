"""The training recipe: a typed, strict schema for ``finharness train RECIPE.yaml``.

Unknown keys are errors (a typo such as ``learning_rte`` must not silently train with the
default), and every error names the recipe file and the field.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator, model_validator


from plumbing.recipes import RecipeError, beside, read_recipe_yaml, validate_mapping
from plumbing.recipes import Strict as _Strict
from plumbing.seeds import check_seeds, seeded_name
from plumbing.vocabulary import DEFAULT_TRAINING_SEED, PromptFormat, TrainingMethod

__all__ = ["RecipeError", "TrainRecipe", "load_recipe", "parse_recipe", "dump_recipe"]


class TaskSpec(_Strict):
    """One training task: an lm-eval task name, its split, and how many examples to draw."""

    name: str
    split: str | None = Field(
        default=None,
        description="None: the task's training_split. The generalization suite also has the "
        "paper's subsets train_2000 / train_4000 / train_6000.",
    )
    samples: int | None = Field(default=None, gt=0, description="None: the whole split")

    @field_validator("name")
    @classmethod
    def _current_name(cls, value: str) -> str:
        from fin_tasks.index import deprecated_alias

        return deprecated_alias(value)


class FticlSpec(_Strict):
    """Fine-tuning with in-context examples (arXiv 2403.09162)."""

    k: int = Field(default=0, ge=0, description="demonstrations prepended to each prompt; 0 is off")
    seed: int = 0


class LoraSpec(_Strict):
    """Mirrors ``peft.LoraConfig``; embeddings and the output layer are never trained."""

    r: int = Field(default=16, gt=0)
    alpha: float = Field(default=32, gt=0, allow_inf_nan=False)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    quantize: Literal["none", "4bit"] = Field(
        default="none", description="4bit: QLoRA, the frozen base in 4-bit NF4 (bitsandbytes, CUDA only), "
        "as arXiv 2411.02476 quantizes")

    @field_validator("target_modules")
    @classmethod
    def _not_embeddings(cls, value):
        if isinstance(value, list):
            if not value:
                raise ValueError("target_modules is empty")
            frozen = [m for m in value if "embed" in m or m in {"lm_head", "output"}]
            if frozen:
                raise ValueError(
                    f"{frozen} would train the embeddings or output layer; they stay frozen so "
                    "fine-tuned models can still be merged with their base")
        return value


class TrainingSpec(_Strict):
    lr: float = Field(default=2e-4, gt=0, le=1, allow_inf_nan=False,
                      description="AdamW's peak learning rate; above 1 every run diverges")
    epochs: float = Field(default=2, gt=0, allow_inf_nan=False)
    batch_size: int = Field(default=4, gt=0, description="examples per micro-batch per device")
    grad_accum: int = Field(default=1, gt=0)
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    max_length: int = Field(default=1024, gt=8, description="tokens; longer prompts lose their start")
    max_grad_norm: float | None = Field(default=1.0, gt=0, allow_inf_nan=False)
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="auto: bf16 autocast on GPUs that support it, fp32 on CPU")
    group_by_length: bool = True
    gradient_checkpointing: bool = Field(
        default=False, description="recompute activations in the backward pass: less memory, ~30% more time")
    report_to: Literal["none", "tensorboard", "wandb"] = Field(
        default="none", description="accelerate's tracker for loss, learning rate and tokens/s "
        "(logs under <run>.partial/trackers while training, <run>/trackers after)")
    logging_steps: int = Field(default=10, gt=0)
    save_steps: int = Field(default=50, gt=0, description="optimizer steps between resumable checkpoints")


class TrainRecipe(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="run folder name")
    base_model: str = Field(
        description="embedded model name, checkpoint folder, or Hub id org/name[@revision] (--online)"
    )
    tasks: list[TaskSpec] = Field(min_length=1)
    include_paths: list[str] = Field(default_factory=list,
                                     description="task folders beside the packaged suite (lm-eval --include_path); "
                                                 "relative to the recipe file")
    prompt_format: PromptFormat = "base"
    fticl: FticlSpec = FticlSpec()
    leak_free: bool = Field(
        default=True, description="skip training rows (and FTICL demonstrations) whose text, or a word 8-gram of "
                                  "it, is in a test document of any packaged task or of the recipe's tasks")
    method: TrainingMethod = Field(
        default="lora", description="lora: PEFT adapters on a frozen base; full_finetune: every weight "
        "trains, as the released code of arXiv 2403.09162 does (no adapter folder)")
    lora: LoraSpec = LoraSpec()
    training: TrainingSpec = TrainingSpec()
    seed: int = DEFAULT_TRAINING_SEED
    seeds: list[int] | None = Field(
        default=None, min_length=1,
        description="train once per seed, each its own run folder <name>-s<seed> (one seed: <name>; instead of seed)")
    output_dir: str = "runs"

    @model_validator(mode="after")
    def _lora_only_with_lora(self):
        if self.method == "full_finetune" and "lora" in self.model_fields_set:
            raise ValueError("lora: settings given, but method is full_finetune (no adapters are trained)")
        return self

    @model_validator(mode="after")
    def _seed_or_seeds(self):
        check_seeds("seed" in self.model_fields_set, self.seeds)
        return self

    def per_seed(self) -> list["TrainRecipe"]:
        """One recipe per training seed: itself, or each seed of ``seeds`` as its own run."""
        if self.seeds is None:
            return [self]
        return [self.model_copy(update={"name": seeded_name(self.name, s, self.seeds), "seed": s, "seeds": None})
                for s in self.seeds]

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, value):
        names = [t.name for t in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"task listed twice: {dupes}")
        return value

    def run_dir(self, output_dir: str | Path | None = None) -> Path:
        return Path(output_dir or self.output_dir) / self.name


def parse_recipe(data: object, source: str = "<recipe>") -> TrainRecipe:
    return validate_mapping(TrainRecipe, data, source)


def load_recipe(path: str | Path) -> TrainRecipe:
    recipe = parse_recipe(read_recipe_yaml(path), str(path))
    # Task folders are the recipe's, wherever the command runs from.
    folder = Path(path).resolve().parent
    return recipe.model_copy(update={"include_paths": beside(folder, recipe.include_paths)})


def recipe_producing(run_dir: str | Path, folders: Iterable[Path]) -> Path | None:
    """The training recipe among the YAMLs in ``folders`` whose run folder (at its own
    ``output_dir``, from the working directory) is ``run_dir``; None if none is."""
    target = Path(run_dir).expanduser().absolute()
    for folder in folders:
        for path in sorted(Path(folder).glob("*.yaml")):
            try:
                if load_recipe(path).run_dir().absolute() == target:
                    return path
            except RecipeError:
                continue
    return None


def dump_recipe(recipe: TrainRecipe) -> str:
    """Every field, defaults included, in a stable order: the run folder's record.

    A full fine-tune's record has no ``lora`` block (it would read as settings given)."""
    exclude = {"lora"} if recipe.method == "full_finetune" else None
    return yaml.safe_dump(recipe.model_dump(mode="json", exclude=exclude), sort_keys=False)
