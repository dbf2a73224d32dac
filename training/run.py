"""``finharness train RECIPE.yaml``: every check first, then the loop, then the run folder."""
from __future__ import annotations

import math
import resource
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from plumbing.atomic import weight_write_errors, write_atomic
from plumbing.checkpoints import resolve_checkpoint
from plumbing.folders import finish, is_finished, partial_dir
from plumbing.logs import log as logger
from training.recipe import RecipeError, TrainRecipe, dump_recipe, load_recipe, parse_recipe
from training.run_folder import adapter_card, library_versions, model_card, read_log, write_log

TRACKERS = "trackers"


def _same_recipe(stored: Path, recipe_text: str) -> bool:
    """Compared as recipes, not text: a field added since the run was made (written with its
    default by today's dump) does not make an old finished run look like a different one."""
    try:
        return parse_recipe(yaml.safe_load(stored.read_text()), str(stored)) == parse_recipe(
            yaml.safe_load(recipe_text))
    except (RecipeError, yaml.YAMLError):
        return False


def _prepare_folders(recipe_text: str, final: Path, resume: bool, overwrite: bool) -> Path | None:
    """The work folder to use; None when an identical finished run already exists."""
    work = partial_dir(final)
    if is_finished(final, "training_run"):
        if overwrite:
            shutil.rmtree(final)
        elif _same_recipe(final / "recipe.yaml", recipe_text):
            return None
        else:
            raise RecipeError(f"{final} holds a finished run of a different recipe (use --overwrite or another name)")
    elif final.exists():
        raise RecipeError(f"{final} exists and is not a finished finharness run; move it away")
    if work.exists():
        if overwrite:
            shutil.rmtree(work)
        elif not resume:
            raise RecipeError(f"{work} holds an interrupted run: pass --resume to continue it, or --overwrite")
        elif (work / "recipe.yaml").is_file() and not _same_recipe(work / "recipe.yaml", recipe_text):
            raise RecipeError(f"{work} was started from a different recipe; --resume needs the same one")
    work.mkdir(parents=True, exist_ok=True)
    return work


def train_recipe(recipe: TrainRecipe | str | Path, *, resume: bool = False, overwrite: bool = False,
                 output_dir: str | Path | None = None,
                 include_paths: list[str | Path] = (), online: bool = False) -> Path:
    """Train one recipe into its run folder and return that folder.

    ``include_paths`` adds task folders to the recipe's own; ``online`` lets a Hub id
    ``base_model`` download."""
    import torch

    from plumbing.offline import set_offline
    from training.batching import plan_problem, plan_steps
    from training.loop import StepLog, checkpoint_step, latest_checkpoint, train_loop
    from training.model_setup import trainable_model

    if not isinstance(recipe, TrainRecipe):
        recipe = load_recipe(recipe)
    if recipe.seeds is not None:
        raise RecipeError(f"{recipe.name}: seeds: {recipe.seeds} is one run per seed; train each of "
                          f"recipe.per_seed() (as `finharness train` does)")
    say = logger.info
    set_offline(online)  # offline unless asked: never wait on the Hub
    if include_paths:
        extra = [str(Path(p).resolve()) for p in include_paths]
        recipe = recipe.model_copy(update={"include_paths": [*recipe.include_paths, *extra]})
    recipe_text = dump_recipe(recipe)
    final = recipe.run_dir(output_dir)

    # Everything that can be wrong with the recipe is found before any folder is touched.
    inputs = _checked_inputs(recipe, online, say)
    model, tokenizer = inputs.model, inputs.tokenizer
    encoded = [e for e in inputs.encoded_all if e is not None]
    tracking = recipe.training.report_to != "none"
    accelerator = _accelerator(recipe, final, tracking)
    if not accelerator.is_main_process:
        say = logger.debug  # one voice in data-parallel runs
    spec = recipe.training
    plan = plan_steps([len(e.input_ids) for e in encoded], batch_size=spec.batch_size,
                      grad_accum=spec.grad_accum, epochs=spec.epochs, seed=recipe.seed,
                      group_by_length=spec.group_by_length, world_size=accelerator.num_processes)
    problem = plan_problem(len(encoded), len(plan), spec, accelerator.num_processes)
    if problem:  # before anything is written: a run that cannot train is no run
        raise RecipeError(f"{recipe.name}: {problem}")
    work = (
        _prepare_folders(recipe_text, final, resume, overwrite) if accelerator.is_main_process else partial_dir(final)
    )
    accelerator.wait_for_everyone()
    if work is None:
        say(f"{final} is already trained with this recipe; nothing to do")
        return final

    torch.manual_seed(recipe.seed)
    trained = trainable_model(model, recipe)
    steps_per_epoch = math.ceil(len(encoded) / spec.batch_size) / (spec.grad_accum * accelerator.num_processes)
    checkpoint_dir = latest_checkpoint(work) if resume else None
    start_step = checkpoint_step(checkpoint_dir) if checkpoint_dir else 0
    log_rows = read_log(work, up_to_step=start_step) if checkpoint_dir else []
    if accelerator.is_main_process:
        write_atomic(work / "recipe.yaml", recipe_text)
        write_log(work, log_rows)
    say(f"training {recipe.name}: {len(encoded)} examples, {len(plan)} optimizer steps"
        + (f", resuming after step {start_step}" if checkpoint_dir else ""))
    if tracking:
        accelerator.init_trackers(recipe.name, config=_flat(recipe.model_dump(mode="json")))

    def on_log(log: StepLog) -> None:
        log_rows.append(asdict(log))
        if tracking:
            accelerator.log({"train/loss": log.loss, "train/lr": log.lr, "train/epoch": log.epoch,
                             "train/tokens_per_second": log.tokens / max(log.seconds, 1e-9)}, step=log.step)
        if accelerator.is_main_process:
            write_log(work, log_rows)
            say(f"  step {log.step}/{len(plan)}  epoch {log.epoch:.2f}  loss {log.loss:.4f}  "
                f"lr {log.lr:.2e}  {log.tokens / max(log.seconds, 1e-9):.0f} tok/s")

    started = time.perf_counter()
    with weight_write_errors(work):  # its resumable checkpoints
        train_loop(model=trained, encoded=encoded, plan=plan, spec=spec, pad_id=tokenizer.pad_token_id,
                   work_dir=work, accelerator=accelerator, resume_from=checkpoint_dir, on_log=on_log,
                   steps_per_epoch=steps_per_epoch)
    seconds = time.perf_counter() - started
    if tracking:
        accelerator.end_training()  # flush and close the writers before the folder is renamed
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with weight_write_errors(work):
            _finish(recipe, recipe_text, inputs, Trained(trained, log_rows, seconds, len(plan)), (work, final),
                    accelerator)
        say(f"finished: {final}")
    accelerator.wait_for_everyone()
    return final


@dataclass
class CheckedInputs:
    """What a run trains on, each checked before any folder is touched."""

    checkpoint: Path  # the base checkpoint's folder
    model: Any
    tokenizer: Any
    examples: Any  # training.examples' examples (with the leak-free skip counts)
    encoded_all: list  # each example's encoding; None: an answer that does not fit


@dataclass
class Trained:
    """What the training loop left: the model, its log rows, the time it took, its optimizer steps."""

    model: Any
    log_rows: list[dict]
    seconds: float
    steps: int


def _checked_inputs(recipe: TrainRecipe, online: bool, say) -> CheckedInputs:
    """The base checkpoint, model and tokenizer, the training examples and their encodings (None:
    an answer that does not fit), each checked before any folder is touched."""
    from training.encode import encode_example
    from training.examples import build_examples, load_tasks
    from training.model_setup import check_quantization, check_target_modules, load_base

    checkpoint = resolve_checkpoint(recipe.base_model)
    if recipe.method == "lora":
        check_quantization(recipe.lora)
    check_tracker(recipe.training.report_to, online)
    model, tokenizer = load_base(checkpoint, recipe.lora.quantize if recipe.method == "lora" else "none")
    if recipe.method == "lora":
        check_target_modules(model, recipe.lora)
    tasks = load_tasks([t.name for t in recipe.tasks], include_paths=recipe.include_paths)
    examples = build_examples(recipe, tokenizer, tasks)
    if any(examples.skipped.values()):
        say("leak-free: skipped training rows that overlap a test document: " + ", ".join(
            f"{task} {n}" for task, n in examples.skipped.items() if n) + " (leak_free: false keeps them)")
    encoded_all = [encode_example(tokenizer, ex, recipe.training.max_length) for ex in examples]
    if not any(e is not None for e in encoded_all):
        raise RecipeError("training.max_length: no example's answer fits")
    return CheckedInputs(checkpoint, model, tokenizer, examples, encoded_all)


def _accelerator(recipe: TrainRecipe, final: Path, tracking: bool):
    import torch
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from training.loop import pick_precision

    # accelerate keeps one state per process and refuses another precision once it is set: a
    # process that trains a bf16 recipe and then an fp32 one (a study, a test session) needs it
    # reset. The process group (PartialState) is kept, so a distributed launch is unaffected.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(
        mixed_precision=pick_precision(recipe.training.precision, _device()), cpu=not torch.cuda.is_available(),
        log_with=recipe.training.report_to if tracking else None,
        project_dir=str(partial_dir(final) / TRACKERS) if tracking else None)


def _finish(recipe, recipe_text: str, inputs: CheckedInputs, done: Trained, folders: tuple[Path, Path],
            accelerator) -> None:
    """Save the trained weights (and adapter), the run's card and lineage; finish the folder."""
    import torch

    work, final = folders
    checkpoint, examples, encoded_all = inputs.checkpoint, inputs.examples, inputs.encoded_all
    log_rows, seconds, steps = done.log_rows, done.seconds, done.steps
    trained = accelerator.unwrap_model(done.model)
    if recipe.method == "full_finetune":
        full = trained
    else:
        trained.save_pretrained(work / "adapter", safe_serialization=True)
        full = _merged(trained, recipe, checkpoint, work / "adapter")
    full.save_pretrained(work, safe_serialization=True)
    inputs.tokenizer.save_pretrained(work)
    tokens = sum(r["tokens"] for r in log_rows)
    lineage = _write_lineage(work, recipe, examples, encoded_all, checkpoint)
    run = {
        "name": recipe.name, "base_model": recipe.base_model, "base_checkpoint": str(checkpoint),
        "method": recipe.method if recipe.method == "full_finetune" or recipe.lora.quantize == "none" else "qlora",
        "prompt_format": recipe.prompt_format, "fticl_k": recipe.fticl.k,
        "tasks": [{"name": t.name, "examples": sum(1 for e in examples if e.task == t.name)} for t in recipe.tasks],
        "examples": len(examples), "dropped": sum(1 for e in encoded_all if e is None),
        "truncated": sum(1 for e in encoded_all if e is not None and e.truncated),
        "steps": steps, "world_size": accelerator.num_processes,
        "precision": "bf16" if accelerator.mixed_precision == "bf16" else "fp32",
        "seconds": seconds, "tokens_per_second": tokens / seconds if seconds else 0.0,
        "final_loss": log_rows[-1]["loss"] if log_rows else float("nan"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
        "versions": library_versions(),
        "lineage": lineage,
    }
    write_atomic(work / "README.md", model_card(recipe_yaml=recipe_text, run=run, log=log_rows))
    if recipe.method == "lora":
        write_atomic(work / "adapter" / "README.md", adapter_card(run=run))
    shutil.rmtree(work / "checkpoints", ignore_errors=True)
    # The manifest says it is finished, and how `finharness eval` should prompt it.
    finish(work, final, "training_run", {**run, "instruct": recipe.prompt_format == "instruct"}, replace=False)


def _write_lineage(work: Path, recipe, examples, encoded_all, checkpoint: Path) -> dict:
    """Fingerprint every text the run showed the model (its documents and FTICL demonstrations),
    joined with its base's lineage where the base is itself a finharness run or merge (sequential
    fine-tuning): a lineage is everything finharness showed the model, not only the last run."""
    from plumbing.fingerprints import LINEAGE_FILE, NGRAMS, Fingerprint

    shown = [ex for ex, enc in zip(examples, encoded_all) if enc is not None]
    fingerprint = Fingerprint.of(text for ex in shown for text in ex.texts)
    per_task = {}
    for spec in recipe.tasks:
        mine = [ex for ex in shown if ex.task == spec.name]
        per_task[spec.name] = {"split": spec.split or "train", "documents": len({ex.doc_index for ex in mine}),
                               "demonstrations": len({d for ex in mine for d in ex.demos}),
                               "skipped_overlapping_test": examples.skipped.get(spec.name, 0)}
    where = {"base_model": recipe.base_model, "base_checkpoint": str(checkpoint)}
    base = _base_lineage(checkpoint)
    if base is not None and base.status != "known":
        return {"status": "unknown", "why": f"its base {checkpoint} was fine-tuned on what finharness cannot "
                                            f"tell ({base.why})", "tasks": per_task, **where}
    if base is not None:
        fingerprint = fingerprint.union(base.fingerprint)
        where["base_lineage"] = {"texts": len(base.fingerprint), "sha256": base.digest,
                                 "tasks": dict(base.record.get("tasks") or {})}
    fingerprint.save(work / LINEAGE_FILE)
    return {"status": "known", "file": LINEAGE_FILE, "texts": len(fingerprint), "ngrams": list(NGRAMS),
            "leak_free": recipe.leak_free, "tasks": per_task, **where}


def _base_lineage(checkpoint: Path):
    """The lineage of a base that finharness fine-tuned or merged (None: a pretrained base,
    whose pretraining no one here can see)."""
    from plumbing.folders import FolderError, read_manifest
    from plumbing.lineage import Lineage, read_lineage

    try:
        manifest = read_manifest(checkpoint)
    except FolderError as err:
        return Lineage("unknown", why=str(err))
    if manifest is None or manifest.kind not in ("training_run", "merge"):
        return None
    return read_lineage(checkpoint)


def _merged(peft_model, recipe: TrainRecipe, checkpoint: Path, adapter: Path):
    """The adapter folded into the base. A QLoRA base is 4-bit, so the adapter is applied to
    the base loaded again in float32 (merging into NF4 weights would round the result)."""
    if recipe.lora.quantize == "none":
        return peft_model.merge_and_unload()
    from peft import PeftModel

    from training.model_setup import load_base

    base, _ = load_base(checkpoint)
    return PeftModel.from_pretrained(base, adapter).merge_and_unload()


def check_tracker(report_to: str, online: bool) -> None:
    """A tracker that cannot start is a recipe error, found before training."""
    import importlib.util
    import os

    if report_to == "tensorboard" and importlib.util.find_spec("tensorboard") is None \
            and importlib.util.find_spec("tensorboardX") is None:
        raise RecipeError("training.report_to: tensorboard needs the tensorboard package "
                          "(pip install 'finharness[track]')")
    if report_to == "wandb":
        if importlib.util.find_spec("wandb") is None:
            raise RecipeError("training.report_to: wandb needs the wandb package (pip install wandb)")
        if not online:
            os.environ.setdefault("WANDB_MODE", "offline")  # offline by default; `wandb sync` later


def _flat(config: dict, prefix: str = "") -> dict:
    """Nested recipe fields as flat scalar hyperparameters, as trackers take them."""
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = ",".join(str(v) for v in value)
        else:
            out[name] = "none" if value is None else value
    return out


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
