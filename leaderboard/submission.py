"""A leaderboard submission: a short YAML file, checked field by field (pydantic).

The fields follow the Open LLM Leaderboard's request files (model, base model, revision,
precision, weight type, model type, chat template), plus where the scores come from:
a ``checkpoint`` the board scores itself, or a ``results`` folder written by
``finharness eval --output_path`` that the board verifies against its logs.

    model: acme/smollm2-fin-ta          # the name shown on the board
    model_type: merged                  # pretrained | instruct | fine-tuned | merged
    weight_type: original               # original | adapter | delta
    base_model: smollm2-135m-instruct   # what it was made from; required for adapters and deltas
    reference: smollm2-135m-instruct    # the board entry forgetting is read against (default: base_model)
    precision: float32                  # float32 | bfloat16 | float16
    chat_template: true
    recipe: ../recipes/merges/task_arithmetic_seen.yaml
    checkpoint: runs/merges/ta_seen     # or  results: runs/eval/ta_seen
    include_paths: [my_tasks]           # your own held-out task folders, if any
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from plumbing.checkpoints import EMBEDDED
from plumbing.recipes import RECIPES_DIR, RecipeError, beside, read_recipe_yaml, validate_mapping
from plumbing.vocabulary import DEFAULT_SEED, DEFAULT_SLICE, DEFAULT_TASKS, Dtype, ModelType, SliceMethod, WeightType



class SubmissionError(RecipeError):
    """A submission the board refuses; the message names the file and field."""


class Submission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200, description="the name shown on the board")
    model_type: ModelType
    weight_type: WeightType
    precision: Dtype
    chat_template: bool = Field(description="whether prompts went through the model's chat template")
    base_model: str | None = Field(None, description="the model the weights were fine-tuned or merged from "
                                                     "(loaded under an adapter or delta)")
    reference: str | None = Field(None, description="the board entry (its model name) seen gain and forgetting "
                                                    "are measured against; default: base_model")
    revision: str | None = Field(None, max_length=200,
                                 description="pinned by content fingerprint when finharness scores it")
    recipe: str | None = Field(None, description="training or merge recipe: a path (copied in) or a URL")
    checkpoint: str | None = None
    results: str | None = None
    tasks: list[str] = Field(default_factory=lambda: list(DEFAULT_TASKS), min_length=1)
    include_paths: list[str] = Field(default_factory=list,
                                     description="folders of the submission's own task YAMLs (relative to this file)")
    num_fewshot: int = Field(0, ge=0)
    limit: float | None = Field(None, gt=0, allow_inf_nan=False,
                                description="docs per task, as `finharness eval --limit`")
    sample: SliceMethod = Field(
        DEFAULT_SLICE, description="how the limit picks documents, as `finharness eval --sample`")
    seed: int = Field(DEFAULT_SEED, ge=0, lt=2 ** 32, description="the slice's seed, as `finharness eval --seed`")
    # Accepted only as false: the board never runs a submission's own code.
    trust_remote_code: Literal[False] = False
    notes: str = Field("", max_length=10_000)
    _folder: Path | None = PrivateAttr(None)  # the submission file's folder: where its recipe may live

    def beside(self, folder: str | Path) -> "Submission":
        """This submission as written in ``folder``: its local recipe may live there (or below)."""
        self._folder = Path(folder).resolve()
        return self

    @model_validator(mode="after")
    def _names_print_as_written(self) -> "Submission":
        """A name shown on the board holds no control or bidi-override character (BD12)."""
        from plumbing.text import unsafe_characters

        for name in ("model", "base_model", "reference", "revision"):
            found = unsafe_characters(getattr(self, name) or "")
            if found:
                raise ValueError(f"`{name}` holds control or bidi-override characters ({', '.join(found)}): they "
                                 "would rewrite the board's lines in a terminal or reorder its text on the page")
        return self

    @model_validator(mode="after")
    def _sources_and_base(self) -> "Submission":
        if (self.checkpoint is None) == (self.results is None):
            raise ValueError("give exactly one of `checkpoint` (scored by the board) or `results` "
                             "(a `finharness eval --output_path` folder)")
        if self.recipe and ":" in self.recipe.split("/", 1)[0] and not re.match(r"(?i)https?://", self.recipe):
            raise ValueError(f"`recipe` {self.recipe!r}: give a local path or an http(s) link")
        if self.weight_type in ("adapter", "delta") and not self.base_model:
            raise ValueError(f"`base_model` is required for weight_type {self.weight_type}")
        return self


def parse_submission(data: object, source: str = "submission") -> Submission:
    """``data`` checked as a submission by the recipes' own loader; errors name the source and field."""
    try:
        return validate_mapping(Submission, data, source)
    except RecipeError as err:
        raise SubmissionError(str(err)) from None


def load_submission(path: Path) -> Submission:
    """Read and check a submission YAML; relative paths in it are relative to the file."""
    path = Path(path)
    try:
        data = read_recipe_yaml(path)
    except RecipeError as err:
        raise SubmissionError(str(err)) from None
    submission = parse_submission(data, str(path)).beside(path.parent)
    for name in ("checkpoint", "results", "recipe"):
        value = getattr(submission, name)
        if value and "://" not in value and not Path(value).is_absolute():
            # An embedded-model name (checkpoint: gemma3-270m) stays as it is; any other
            # relative path is the submission file's, never the current directory's. The
            # recipe's links are not followed here: read_recipe refuses a link.
            local = Path(os.path.normpath(path.parent.resolve() / value)) if name == "recipe" \
                else (path.parent / value).resolve()
            if not (name == "checkpoint" and (value in EMBEDDED or (_hub_id(value) and not local.exists()))):
                setattr(submission, name, str(local))
    submission.include_paths = beside(path.parent, submission.include_paths)
    return submission


def _hub_id(value: str) -> bool:
    """``org/name[@revision]``: a Hub checkpoint, unless a folder of that name is beside the submission."""
    from plumbing.checkpoints import HUB_ID, split_revision

    return bool(HUB_ID.match(split_revision(value)[0]))


RECIPE_MAX_BYTES = 64 * 1024


def read_recipe(sub: Submission) -> str | None:
    """The submission's local recipe, parsed as a finharness training or merge recipe and
    re-serialized: what the board stores and shows. Only a regular file (no link) inside the
    submission's folder or the project's ``recipes/``, under 64 KiB, is read: ``recipe:`` must not
    carry any other file of the board's machine onto the page. None for a link (http) or no recipe."""
    from merges.recipe import parse_merge_recipe
    from training.recipe import dump_recipe, parse_recipe

    if not sub.recipe or "://" in sub.recipe:
        return None
    path = Path(sub.recipe)
    if path.is_symlink():
        raise SubmissionError(f"recipe: {path} is a symbolic link; give the recipe file itself")
    if not path.is_file():
        raise SubmissionError(f"recipe: {path} does not exist or is not a regular file")
    roots = [r for r in (sub._folder, RECIPES_DIR) if r is not None]
    if not any(path.resolve().is_relative_to(root) for root in roots):
        raise SubmissionError(f"recipe: {path} is outside {' and '.join(map(str, roots))}; a recipe must live "
                              "beside the submission or in the project's recipes/")
    if path.stat().st_size > RECIPE_MAX_BYTES:
        raise SubmissionError(f"recipe: {path} is {path.stat().st_size} bytes; a recipe is under "
                              f"{RECIPE_MAX_BYTES // 1024} KiB")
    try:
        data = read_recipe_yaml(path)
    except RecipeError as err:
        raise SubmissionError(f"recipe: {err}") from None
    errors = []
    try:
        return yaml.safe_dump(parse_merge_recipe(data, str(path)).model_dump(mode="json", by_alias=True),
                              sort_keys=False)
    except RecipeError as err:
        errors.append(f"as a merge recipe: {err}")
    try:
        return dump_recipe(parse_recipe(data, str(path)))
    except RecipeError as err:
        errors.append(f"as a training recipe: {err}")
    raise SubmissionError(f"recipe: {path} is not a finharness recipe\n  " + "\n  ".join(errors))
