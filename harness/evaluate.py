"""Score one checkpoint on finharness tasks through lm-eval's Python API."""
from __future__ import annotations

import fnmatch
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from evidence.records import RUN_RECORD_KEY, LineageRecord, RunRecord, SliceRecord
from fin_tasks import HUB_TASKS_DIR
from fin_tasks.common.validate import TaskYamlError, validate_with_suite
from fin_tasks.index import UnknownTask, deprecated_alias, expand, external_fingerprints, index_paths
from fin_tasks.sandbox import refuse_code
from harness.backends import DEFAULT_BACKEND, REGISTRY, Backend, register
from harness.lm_cache import cache_path, quarantine_broken
from harness.lm_eval_adapters import adapt_evaluator, name_results_folder, score_on_validation
from harness.speed import cost_note, measured, record, work_kind
from plumbing.atomic import write_atomic
from plumbing.checkpoints import (CheckpointError, ResolvedModel, architecture, has_chat_template, is_instruct,
                                  model_fingerprint, resolve_model)
from plumbing.logs import log
from plumbing.offline import set_offline
from plumbing.vocabulary import (DEFAULT_SEED, DEFAULT_SLICE, DEFAULT_TASKS, ChatTemplate, ScoringDtype, SliceMethod,
                                 Split, WeightType, check_choices)


@dataclass
class EvalRequest:
    model: str
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    num_fewshot: int | None = None
    limit: int | float | None = None
    sample: SliceMethod = DEFAULT_SLICE  # how --limit picks documents (harness/slices.py)
    batch_size: int | str = 8
    device: str | None = None
    dtype: ScoringDtype = "float32"
    chat_template: ChatTemplate = "auto"
    online: bool = False
    include_defaults: bool = False  # also index lm-eval's ~14,700 built-in tasks (~10 s)
    output_path: Path | None = None
    log_samples: bool = False
    seed: int = DEFAULT_SEED
    backend: Backend = DEFAULT_BACKEND
    use_cache: bool = True  # per-checkpoint lm-eval request cache (harness/lm_cache.py)
    base_model: str | None = None  # for an adapter or delta weights
    weight_type: Literal["auto"] | WeightType = "auto"
    model_args: dict[str, Any] = field(default_factory=dict)  # passed through to the lm-eval backend
    # validation: for choosing merge weights, never on test. development: a study's gate rows, the
    # validation split's rows that repeat no test document, or (a task without one) the test
    # split's documents outside the slices of ``development_outside``'s limits.
    split: Split = "test"
    development_outside: tuple[int | float | None, ...] = ()
    include_paths: list[Path] = field(default_factory=list)  # the user's task folders (lm-eval --include_path)
    revision: str | None = None  # the weights' fingerprint when the caller has hashed them already
    # Passed through to lm-eval as its own CLI passes them:
    chat_template_name: str | None = None  # --apply_chat_template NAME: a named template of the tokenizer
    system_instruction: str | None = None
    fewshot_as_multiturn: bool | None = None  # None: on with the chat template and few-shot examples
    gen_kwargs: dict[str, Any] | None = None
    wandb_args: dict[str, Any] | None = None  # lm-eval's WandbLogger
    wandb_config_args: dict[str, Any] | None = None
    hf_hub_log_args: dict[str, Any] | None = None  # lm-eval's EvaluationTracker (push to the Hub)

    def __post_init__(self) -> None:
        check_choices(self)  # sample, dtype, chat_template, backend, weight_type, split


@dataclass
class EvalOutcome:
    results: dict[str, Any] | None  # None on the non-zero ranks of an `accelerate launch` run
    seconds: float
    model: ResolvedModel


def plan_tasks(requested: list[str], online: bool,
               include_paths: list[Path] = ()) -> tuple[list[Path], dict[str, str]]:
    """Include paths for this run, and the requested hub-only tasks skipped offline
    (``requested``: names as :func:`requested_tasks` resolved them).

    Every YAML of the suite and of the user's folders is validated first, so a broken
    file stops the run with its name instead of silently vanishing from lm-eval's index
    (lm-eval says only "Tasks not found"); the user's folders with their data, as
    ``finharness validate`` checks them.
    """
    # The user's folders get all of `finharness validate`'s checks, data and metrics included: a
    # misspelt metric would otherwise crash after every document was scored.
    rows, errors = validate_with_suite(list(include_paths))
    if errors:
        raise TaskYamlError("\n".join(errors))
    # Your own !function code runs (it is yours); a template reaching Python's internals or a
    # YAML that is no data (an alias bomb) does not, whoever wrote it.
    refuse_code(include_paths, where="--include_path", kinds=("template", "unreadable"),
                why="task templates render in Jinja's sandbox and YAML is read as data")
    if online:
        return index_paths(include_paths, hub=True), {}
    hub_only = [r["name"] for r in rows if Path(r["file"]).is_relative_to(HUB_TASKS_DIR)]
    skipped = {
        name: "its data is only on the Hugging Face Hub and this run is offline (use --online)"
        for name in hub_only
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in requested)
    }
    return index_paths(include_paths), skipped


def requested_tasks(names: list[str]) -> list[str]:
    """The user's task names with renamed ones resolved, once per run (one deprecation line each)."""
    return [deprecated_alias(name) for name in names]


def select_tasks(requested: list[str], known: list[str], skipped: dict[str, str]) -> list[str]:
    """Names and patterns expanded by lm-eval's own matcher; what was skipped dropped; an
    entry that matches nothing at all is an error listing the nearest names."""
    selected: list[str] = []
    for entry in requested:
        if entry in skipped:
            continue
        try:
            matches = expand([entry], known)
        except UnknownTask:
            if fnmatch.filter(list(skipped), entry):
                continue
            raise
        selected += [t for t in matches if t not in selected]
    if not selected:
        raise ValueError(f"no task to run: {requested} matched only tasks skipped offline")
    return selected


def slice_documents(loaded: dict[str, Any], limit: int | float | None, method: str,
                    seed: int) -> dict[str, list[int]] | None:
    """lm-eval ``samples`` (task -> document indices) for a ``--limit`` run of the ``loaded``
    tasks: seeded and stratified by gold label unless ``method`` is ``first`` (lm-eval's own
    ``--limit``)."""
    if limit is None or method == "first":
        return None
    from harness.slices import select, task_golds

    return {name: select(task_golds(task), limit, method, seed) for name, task in loaded.items()}


def slice_record(loaded: dict[str, Any], req: EvalRequest, doc_slice: dict[str, list[int]] | None) -> SliceRecord:
    """What the results say about the slice: method, seed, limit, the stratified rule, and
    per task the labels that got no document (a slice that keeps the prior can miss rare ones)."""
    record = SliceRecord(method=req.sample if req.limit is not None else None, seed=req.seed, limit=req.limit)
    if req.split == "development":  # rows outside these test slices (tasks without a validation split)
        record["development_outside"] = list(req.development_outside)
    if doc_slice is not None and req.sample == "stratified":
        from harness.slices import RULE, unsampled_labels

        record["rule"] = RULE
        record["unsampled_labels"] = {t: missing for t, chosen in doc_slice.items()
                                      if (missing := unsampled_labels(loaded[t], chosen))}
    return record


def use_chat_template(mode: ChatTemplate, checkpoint: Path) -> bool:
    if mode == "on" and not has_chat_template(checkpoint):
        raise CheckpointError(f"chat template on, but {checkpoint} has none (no chat_template in its tokenizer)")
    return is_instruct(checkpoint) if mode == "auto" else mode == "on"


def development_documents(loaded: dict[str, Any], req: "EvalRequest") -> dict[str, list[int]]:
    """lm-eval ``samples`` for ``split: development`` (``loaded`` by a manager that already
    scores validation splits where tasks have them): per task, rows that no test slice scores
    and that repeat no test document, drawn as ``--limit`` draws."""
    from fin_tasks.common.decontamination import POOL_MARK
    from harness.slices import development_slice, select, task_golds

    out = {}
    for name, task in loaded.items():
        golds = task_golds(task)
        if task.config.validation_split:
            docs = task.eval_docs
            marks = docs[POOL_MARK][:] if POOL_MARK in (getattr(docs, "column_names", None) or ()) else \
                [isinstance(d, dict) and d.get(POOL_MARK) for d in docs]
            excluded = {i for i, mark in enumerate(marks) if mark}
        else:
            if not req.development_outside or None in req.development_outside:
                raise ValueError(f"task {name} has no validation split, so its development rows would be test "
                                 "documents outside the test slices, and no limited test slice was given to stay "
                                 "outside (a study's test sets need a limit)")
            excluded = {i for limit in req.development_outside for i in select(golds, limit, req.sample, req.seed)}
        chosen = development_slice(golds, req.limit, excluded, req.sample, req.seed)
        if not chosen:
            raise ValueError(f"task {name}: no development rows remain outside its test documents")
        out[name] = chosen
    return out


def backend_model_args(req: EvalRequest, model: ResolvedModel) -> dict[str, Any]:
    """lm-eval ``model_args`` for the backend: the weights, dtype, and the user's extras.

    The extras are lm-eval's own scale-out knobs (``parallelize=True`` for the hf
    backends; ``tensor_parallel_size``, ``data_parallel_size``, ``gpu_memory_utilization``
    for vLLM). ``trust_remote_code`` stays off whatever they say.
    """
    args: dict[str, Any] = {**model.model_args(), "dtype": req.dtype}
    if req.dtype == "bfloat16-checked" and not REGISTRY[req.backend].checks_bfloat16:
        raise ValueError(f"--dtype bfloat16-checked needs a backend that checks it "
                         f"({', '.join(n for n, e in REGISTRY.items() if e.checks_bfloat16)}), not {req.backend}")
    adapt = REGISTRY[req.backend].adapt_args
    if adapt is not None:
        args = adapt(args, model)
    owned = set(args) | {"trust_remote_code"}
    clash = sorted(set(req.model_args) & owned)
    if clash:
        raise ValueError(f"--model_args may not set {', '.join(clash)} (finharness sets them from --model and --dtype)")
    return {**args, **req.model_args, "trust_remote_code": False}


def contamination_record(samples: dict[str, list[dict]], manager, loaded: dict[str, Any], checkpoint: Path,
                         num_fewshot: int | None) -> RunRecord:
    """The checkpoint's lineage; when it is known, each scored task's overlap with it (and with
    the task's few-shot pool and other splits) and clean-subset scores; with few-shot
    prompts, how many pool rows the leak-free sampler skipped."""
    from fin_tasks.common.decontamination import POOL_MARK
    from plumbing.lineage import read_lineage

    lineage = read_lineage(checkpoint)
    out = RunRecord(lineage=LineageRecord(status=lineage.status, note=lineage.describe(),
                                          **({"sha256": lineage.digest} if lineage.digest else {})))
    if lineage.status != "known" and not num_fewshot:
        return out
    tasks = {name: loaded[name] for name in samples}
    if lineage.status == "known":
        from evidence.contamination import run_contamination

        out["contamination"] = {t: r.as_json() for t, r in
                                run_contamination(samples, manager, lineage, tasks=tasks).items()}
    if num_fewshot:
        skipped = {}
        for name, task in tasks.items():
            split = task.config.fewshot_split
            dataset = getattr(task, "dataset", None) or {}
            if split in dataset and POOL_MARK in dataset[split].column_names:
                skipped[name] = int(sum(dataset[split][POOL_MARK]))
        out["fewshot_pool_skipped"] = skipped
    return out


def _documents(loaded: dict[str, Any]) -> tuple[int, int, list[str]]:
    """Test documents (validation where a task has no test split) of the loaded tasks (groups
    expanded); how many tasks; their output types."""
    return (sum(len(task.eval_docs) for task in loaded.values() if hasattr(task, "eval_docs")), len(loaded),
            [getattr(task, "OUTPUT_TYPE", None) or task.config.output_type for task in loaded.values()])


def run_eval(req: EvalRequest) -> EvalOutcome:
    """Score ``req.model`` on ``req.tasks``: resolve, plan, run lm-eval, record, save."""
    set_offline(req.online)
    model = resolve_model(req.model, req.base_model, req.weight_type, revision=req.model_args.get("revision"))
    model_args = backend_model_args(req, model)
    requested = requested_tasks(req.tasks)
    include, skipped = plan_tasks(requested, req.online, req.include_paths)
    for name, why in skipped.items():
        log.info("skipping %s: %s", name, why)

    import torch

    register(req.backend)  # lm-eval finds it by name
    from fin_tasks.index import task_manager

    manager = task_manager(req.include_paths, hub=HUB_TASKS_DIR in include, include_defaults=req.include_defaults)
    tasks = select_tasks(requested, list(manager.all_tasks), skipped)
    if req.split == "validation":
        score_on_validation(manager)
    if req.split == "development":
        score_on_validation(manager, required=False)
    # Loaded once for what finharness reads (the slice, its record, the contamination figures);
    # lm-eval loads its own copies to run.
    loaded = manager.load(tasks)["tasks"]
    if req.split == "development":
        doc_slice = development_documents(loaded, req)
    else:
        doc_slice = slice_documents(loaded, req.limit, req.sample, req.seed)
    chat = use_chat_template(req.chat_template, model.checkpoint)
    device = req.device or ("cuda" if torch.cuda.is_available() else "cpu")
    tracker, wandb = _loggers(req)
    # Hashing the weights is read-bound (seconds for a 7B model): once, for the cache
    # path and for the results' revision.
    fingerprint = req.revision or model_fingerprint(model.folders)
    cache = str(cache_path(fingerprint, req.backend, req.dtype, req.model_args)) if req.use_cache else None
    for note in quarantine_broken(cache) if cache else ():
        log.warning(note)
    # A speed is only this machine's when the answers are computed, not read from a cache.
    computes = cache is None or not any(Path(cache).parent.glob(f"{Path(cache).name}_rank*.db"))
    if req.limit is None:
        docs, count, output_types = _documents(loaded)
        work = work_kind(output_types, req.num_fewshot)
        note = cost_note(docs, count, measured(fingerprint, req.backend, req.dtype, device, work), work)
        if note:
            log.warning(note)

    start = time.perf_counter()
    results = _simple_evaluate(req, model_args, tasks, doc_slice, device, manager, cache, chat, tracker)
    seconds = time.perf_counter() - start
    if results is None:  # a non-zero rank of a data-parallel run: rank 0 reports
        return EvalOutcome(None, seconds, model)
    if computes:
        from evidence.report import docs_scored

        work = work_kind([(c or {}).get("output_type", "") for c in (results.get("configs") or {}).values()],
                         req.num_fewshot)
        record(fingerprint, req.backend, req.dtype, device, work, docs_scored(results), seconds)
    block = _run_record(req, model, fingerprint, chat, tasks, manager, loaded, doc_slice, results)
    checked = (results.get("config") or {}).pop("precision_check", None)
    if checked:  # --dtype bfloat16-checked: which documents were answered in float32, and the error
        block["precision_check"] = checked
    samples = results.pop("samples", None)
    if samples:
        from evidence.baselines import run_baselines
        from evidence.generation_baselines import run_lead_baselines

        block["baselines"] = {
            task: found.as_json() for task, found in run_baselines(results, samples, manager).items()}
        leads = run_lead_baselines(results, samples)
        if leads:
            block["generation_baselines"] = leads
        block.update(contamination_record(samples, manager, loaded, model.checkpoint, req.num_fewshot))
    results[RUN_RECORD_KEY] = block
    _save(req, results, samples, doc_slice, tracker, wandb)
    if req.log_samples and samples is not None:
        results["samples"] = samples
    return EvalOutcome(results=results, seconds=seconds, model=model)


def _loggers(req: EvalRequest):
    """lm-eval's own loggers: the results folder (and Hub push) tracker, and W&B."""
    from lm_eval.loggers import EvaluationTracker

    hub_log = dict(req.hf_hub_log_args or {})
    tracker = None
    if req.output_path or hub_log:
        if req.output_path:
            hub_log["output_path"] = str(req.output_path)
        if os.environ.get("HF_TOKEN"):
            hub_log.setdefault("token", os.environ["HF_TOKEN"])
        tracker = EvaluationTracker(**hub_log)
    wandb = None
    if req.wandb_args:
        from lm_eval.loggers import WandbLogger

        wandb = WandbLogger(req.wandb_args, req.wandb_config_args or {})
    return tracker, wandb


def _simple_evaluate(req: EvalRequest, model_args: dict[str, Any], tasks: list[str],
                     doc_slice: dict[str, list[int]] | None, device: str, manager, cache: str | None,
                     chat: bool, tracker) -> dict[str, Any] | None:
    """lm-eval's ``simple_evaluate`` with this request's settings, every seed set to ``req.seed``."""
    import lm_eval

    adapt_evaluator()
    multiturn = bool(chat and req.num_fewshot) if req.fewshot_as_multiturn is None else req.fewshot_as_multiturn
    return lm_eval.simple_evaluate(
        model=req.backend,
        model_args=model_args,
        tasks=tasks,
        num_fewshot=req.num_fewshot,
        limit=req.limit if doc_slice is None else None,
        samples=doc_slice,
        batch_size=req.batch_size,
        device=device,
        task_manager=manager,
        use_cache=cache,
        apply_chat_template=(req.chat_template_name or True) if chat else False,
        fewshot_as_multiturn=multiturn,
        system_instruction=req.system_instruction,
        gen_kwargs=req.gen_kwargs,
        log_samples=True,  # the per-document answers give the baselines and the collapse flag
        evaluation_tracker=tracker,
        random_seed=req.seed,
        numpy_random_seed=req.seed,
        torch_random_seed=req.seed,
        fewshot_random_seed=req.seed,
    )


def _run_record(req: EvalRequest, model: ResolvedModel, fingerprint: str, chat: bool, tasks: list[str],
                manager, loaded: dict[str, Any], doc_slice: dict[str, list[int]] | None,
                results: dict[str, Any]) -> RunRecord:
    """The results' ``finharness`` block (evidence.records.RunRecord): what was scored, by
    content. The leaderboard pins a local checkpoint by this fingerprint as the Hub pins a
    revision by its commit, and a task from the user's folders by the hashes of its files. The
    limit lives in ``slice``."""
    scored = list(results.get("configs", {}))
    return RunRecord(
        model=req.model, weight_type=model.weight_type, base_model=req.base_model,
        architecture=architecture(model.checkpoint),
        revision=fingerprint, backend=req.backend, dtype=req.dtype,
        chat_template=chat, num_fewshot=req.num_fewshot, tasks=tasks,
        slice=slice_record(loaded, req, doc_slice),
        split=req.split, include_paths=[str(p) for p in req.include_paths],
        external_tasks=external_fingerprints(scored, manager.task_index),
    )


def _save(req: EvalRequest, results: dict[str, Any], samples: dict[str, list[dict]] | None,
          doc_slice: dict[str, list[int]] | None, tracker, wandb) -> None:
    """Results and per-sample logs through lm-eval's tracker (and W&B); the slice's document ids."""
    if wandb is not None:
        wandb.post_init(results)
        wandb.log_eval_result()
        if samples:
            wandb.log_eval_samples(samples)
    if tracker is not None:
        name_results_folder(tracker, req.model)
        tracker.save_results_aggregated(results=results, samples=samples)
        if samples:
            for task_name in results["configs"]:
                tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
        if tracker.push_results_to_hub or tracker.push_samples_to_hub:
            tracker.recreate_metadata_card()
    if wandb is not None:
        wandb.run.finish()
    if req.output_path and doc_slice is not None:
        # The same documents with plain lm-eval: lm_eval --samples <this file> (no --limit).
        write_atomic(Path(req.output_path) / "samples.json", json.dumps(doc_slice, indent=1))
