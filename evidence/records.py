"""The records other packages exchange about scores, declared once (as lm-eval declares its
results JSON in ``lm_eval/result_schema.py``, and ``plumbing/folders.py`` the manifests).

- :class:`RunRecord`: the ``"finharness"`` block ``finharness eval`` writes into lm-eval's
  results JSON (``harness/evaluate.py``) and everything above reads: what was scored, by
  content, its slice, trivial baselines, lineage and contamination.
- :class:`EntryMetadata`: what the board keeps beside an entry's scores (``Entry.metadata``):
  the submission as accepted plus what verification found.

Readers go through :func:`run_record` and ``Entry.metadata`` (typed by :class:`EntryMetadata`);
``tests/test_records.py`` checks that every key a real evaluation and a real submission write
is declared here, and that no code reads a key that is not.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from plumbing.vocabulary import (Dtype, LineageStatus, ModelType, Prior, ScoringDtype, SliceMethod, SliceRule, Split,
                                 WeightType)

RUN_RECORD_KEY = "finharness"  # the block's key in lm-eval's results JSON


class SliceRecord(TypedDict, total=False):
    method: SliceMethod | None  # None without --limit
    seed: int
    limit: float | None
    development_outside: list[str]  # tasks without a validation split (split: development)
    rule: SliceRule  # the stratified slice's allocation rule (harness/slices.py RULE)
    unsampled_labels: dict[str, list[str]]  # task -> labels that got no document


class BaselineRecord(TypedDict, total=False):
    """One classification task's trivial answers and collapse (evidence/baselines.py TaskBaselines)."""
    labels: list[str]
    docs: int
    predicted: dict[str, int]  # predicted label -> documents
    gold: dict[str, int]  # gold label -> documents
    distance: float
    mcc: float
    collapsed: str | None  # the most predicted label when the answers collapsed onto it
    baselines: dict[str, dict[str, float]]  # baseline -> metric -> score
    normalized: dict[str, float]  # metric -> the model's score normalized to the best baseline (unclipped)
    answers: dict[str, str]  # constant baseline -> the label it answers
    prior: Prior


class LeadRecord(TypedDict):
    """One generation task's lead answers (evidence/generation_baselines.py)."""
    docs: int
    baselines: dict[str, dict[str, float]]  # "first sentence" / "first three sentences" -> metric -> score
    normalized: dict[str, float]  # metric -> the model's score normalized to the better lead (unclipped)


class LineageRecord(TypedDict, total=False):
    status: LineageStatus
    note: str
    sha256: str  # the lineage file scored with (pins it: evidence.contamination.scored_lineage)


class ContaminationRecord(TypedDict):
    """One task's overlap with what the checkpoint saw (evidence/contamination.py TaskContamination)."""
    docs: int
    ngram: int
    lineage: LineageStatus
    share: float
    flagged: dict[str, list[int]]
    contaminated: list[int]
    scores: list[dict[str, Any]]


class PrecisionCheckRecord(TypedDict):
    """One task under ``--dtype bfloat16-checked`` (harness/backend/precision_check.py CheckedTask)."""
    documents: int
    probed: int  # scored in both precisions to measure bfloat16's error
    rescored: int  # answered in float32 (the probed ones included)
    largest_gap: float  # largest |bfloat16 - float32| log-likelihood among the probed requests
    per_token_bound: float
    float32_docs: list[int]  # the rest keep bfloat16's log-likelihoods (their answers are float32's)


class RunRecord(TypedDict, total=False):
    """The results' ``"finharness"`` block."""
    model: str  # as the user named it
    weight_type: WeightType
    base_model: str | None
    architecture: str | None  # the config's model_type
    revision: str  # the weights' content fingerprint (plumbing.checkpoints.model_fingerprint) or Hub commit
    backend: str  # a name of harness.backends.REGISTRY
    dtype: ScoringDtype
    chat_template: bool
    num_fewshot: int | None
    tasks: list[str]  # as asked (groups unexpanded)
    slice: SliceRecord
    split: Split
    include_paths: list[str]
    external_tasks: dict[str, dict[str, Any]]  # task -> fin_tasks.index.task_fingerprint, outside the package
    baselines: dict[str, BaselineRecord]
    generation_baselines: dict[str, LeadRecord]
    lineage: LineageRecord
    contamination: dict[str, ContaminationRecord]
    fewshot_pool_skipped: dict[str, int]  # task -> pool rows the leak-free sampler skipped
    precision_check: dict[str, PrecisionCheckRecord]  # task -> what --dtype bfloat16-checked did


def run_record(results: Mapping[str, Any]) -> RunRecord:
    """The ``"finharness"`` block of an lm-eval results JSON; empty for results lm-eval wrote
    alone (plain ``lm_eval``), an error naming the block when it is not an object."""
    found = results.get(RUN_RECORD_KEY)
    if found is None:
        return RunRecord()
    if not isinstance(found, Mapping):
        raise ValueError(f"results: {RUN_RECORD_KEY!r} is {type(found).__name__}, not an object")
    return found  # type: ignore[return-value]  # declared above; tests/test_records.py checks the writers


class CleanRecord(TypedDict, total=False):
    """One verified task's contamination as the board keeps it (evidence.contamination.clean_record)."""
    docs: int
    lineage: LineageStatus
    share: float
    flagged: dict[str, int]
    clean_docs: int
    scores: dict[str, float]
    normalized: float | None


class BoardContamination(TypedDict, total=False):
    """What the board keeps of an entry's contamination (leaderboard/submit.py)."""
    lineage: LineageStatus
    lineage_note: str
    tasks: dict[str, CleanRecord]


class EntryMetadata(TypedDict, total=False):
    """A board entry's ``metadata``: the submission as accepted (leaderboard.submission.Submission's
    fields) and what verification found."""
    # the submission
    model: str
    model_type: ModelType
    weight_type: WeightType
    precision: Dtype
    chat_template: bool
    base_model: str | None
    reference: str | None  # the entry seen gain and forgetting are measured against
    revision: str | None
    recipe: str | None
    checkpoint: str | None
    results: str | None
    tasks: list[str]
    include_paths: list[str]
    num_fewshot: int
    limit: float | None
    sample: SliceMethod
    seed: int
    trust_remote_code: bool
    notes: str
    # what verification found
    roles: dict[str, str]  # task -> seen / unseen / retention
    external_tasks: dict[str, dict[str, Any]]
    baselines: dict[str, BaselineRecord]
    intervals: dict[str, list[float]]  # seen_norm / unseen_norm / ... -> 95% interval
    contamination: BoardContamination
    architecture: str | None


def entry_metadata(raw: Mapping[str, Any]) -> EntryMetadata:
    """A stored entry's metadata (a JSON object), as :class:`EntryMetadata`."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"entry metadata is {type(raw).__name__}, not an object")
    return dict(raw)  # type: ignore[return-value]


def declared_keys(record: type) -> frozenset[str]:
    """The keys a record type declares (for the checks that no code writes or reads another)."""
    return frozenset(record.__annotations__)
