"""The project's small vocabularies, each defined once and used by the command line, the
evaluation request, the board's submission schema, the studies and the recipes."""
from __future__ import annotations

from typing import Literal, get_args

# How `--limit` picks documents: a seeded slice keeping the label prior, a seeded random one,
# or lm-eval's own first N.
SliceMethod = Literal["stratified", "random", "first"]
SLICE_METHODS: tuple[str, ...] = get_args(SliceMethod)
DEFAULT_SLICE: SliceMethod = "stratified"

# lm-eval's default seed for its samplers; finharness's --limit slice uses it too.
DEFAULT_SEED = 1234

# Weights' dtype for scoring and merging.
Dtype = Literal["float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = get_args(Dtype)
# How a run scores: a weights' dtype, or bfloat16 with float32's answers (harness/backend/precision_check.py).
ScoringDtype = Dtype | Literal["bfloat16-checked"]

# Where a checkpoint's weights are: a full model, a PEFT adapter on a base, delta weights on a base.
WeightType = Literal["original", "adapter", "delta"]
WEIGHT_TYPES: tuple[str, ...] = get_args(WeightType)

# Whether prompts go through the tokenizer's chat template: auto = where the model is an instruct one.
ChatTemplate = Literal["auto", "on", "off"]
CHAT_TEMPLATE_MODES: tuple[str, ...] = get_args(ChatTemplate)

# Which split a run scores: the test split, validation (a merge sweep's choice), or a study's
# development rows (validation where a task has one, else test rows outside every test slice).
Split = Literal["test", "validation", "development"]

# How a stratified slice allocates documents to labels: in proportion to the label prior, or
# (before 2026-12) at least one per label.
SliceRule = Literal["prior", "floor"]
SLICE_RULES: tuple[str, ...] = get_args(SliceRule)

# Whose label shares prior-matched random guessing draws from: the training split, or the slice.
Prior = Literal["train", "slice"]

# Whether a checkpoint's training texts are on record (plumbing/lineage.py).
LineageStatus = Literal["known", "unknown"]

# The two prompt formats of arXiv 2411.02476 and how a run trains.
PromptFormat = Literal["base", "instruct"]
TrainingMethod = Literal["lora", "full_finetune"]
DEFAULT_TRAINING_SEED = 42  # a training run's seed when its recipe names none

# A board entry's model type, as the Open LLM Leaderboard's request files spell it.
ModelType = Literal["pretrained", "instruct", "fine-tuned", "merged"]

# What a study's tables normalize ROUGE and BLEU to: nothing (raw scores, as studies run before
# 2026-12-07 read them) or the input's first sentence(s), as classification is to its trivial labels.
GenerationBaseline = Literal["none", "lead"]

# A study's rows: the untouched model, single-task and multi-task fine-tunes, and merges.
RowKind = Literal["vanilla", "single", "multi", "merged"]

# What `finharness eval` (and a board submission) scores when no task is named.
DEFAULT_TASKS: tuple[str, ...] = ("finharness_all",)


def check_choices(obj: object) -> None:
    """Every field of a dataclass typed with a ``Literal`` (or a union of them) holds one of its
    words: checked once where the object is made, not again where the value is used."""
    import dataclasses
    from typing import Union, get_origin, get_type_hints

    def words(kind: object) -> tuple | None:
        if get_origin(kind) is Literal:
            return get_args(kind)
        if get_origin(kind) is Union or type(kind).__name__ == "UnionType":
            parts = [words(k) for k in get_args(kind)]
            return sum(parts, ()) if all(p is not None for p in parts) else None
        return None

    hints = get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        allowed = words(hints[f.name])
        value = getattr(obj, f.name)
        if allowed is not None and value not in allowed:
            raise ValueError(f"{f.name} must be one of {', '.join(map(str, allowed))}; not {value!r}")
