"""What a study costs before it runs: the work of every step, and hours from measured speed.

Work is counted, not guessed: a seeded sample of each training task's examples is rendered
exactly as training renders them and tokenized (tokens per example x examples x epochs);
each evaluation's documents are counted from the task splits and a sample of them rendered
with the step's shots (prompt tokens, plus every label's tokens or the generation budget).

Speed is measured, never assumed: ``finharness study probe`` trains a few steps and scores a
few documents of the study on this machine, per model, and writes ``throughput.json`` in the
study's output folder (tokens per second, the device named). ``--dry_run`` divides the work by
it. Without a probe the plan shows the work only and says so. Estimates assume the probe's
device, batch size and precision; on another machine, probe there.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Literal

from plumbing.atomic import write_atomic
from plumbing.folders import read_manifest
from plumbing.vocabulary import DEFAULT_SEED
from study.spec import EvalStep, Study
from training.recipe import TrainRecipe

THROUGHPUT = "throughput.json"
SAMPLE = 16  # examples / documents rendered per task to measure tokens per item


@dataclass
class Work:
    kind: Literal["train", "merge", "eval"]  # the step kinds that compute (study.run.StepKind)
    label: str
    model: str  # study model label
    items: int  # training examples x epochs, or documents
    tokens: int  # tokens the step computes (training: forward+backward; eval: prompts + answers)
    note: str = ""


def _tokenizer(model: str, fallback: str):
    """The model's tokenizer, or (a Hub id offline) the embedded one of the same prompt format."""
    from transformers import AutoTokenizer

    from plumbing.checkpoints import EMBEDDED, CheckpointError, embedded_tokenizer, resolve_checkpoint

    # An embedded model's tokenizer comes without converting its weights: a plan converts nothing.
    if model in EMBEDDED:
        return embedded_tokenizer(model), ""
    try:
        return AutoTokenizer.from_pretrained(resolve_checkpoint(model), trust_remote_code=False), ""
    except CheckpointError:
        return embedded_tokenizer(fallback), f"tokens counted with {fallback}'s tokenizer ({model} is not here)"


def _fallback(prompt_format: str) -> str:
    return "smollm2-135m-instruct" if prompt_format == "instruct" else "gemma3-270m"


def train_work(recipe: TrainRecipe, label: str, tokenizer, note: str) -> Work:
    from training.examples import build_examples, load_tasks, split_docs

    tasks = load_tasks([t.name for t in recipe.tasks], include_paths=recipe.include_paths)
    counts = {t.name: t.samples or len(split_docs(tasks[t.name], t)) for t in recipe.tasks}
    probe = recipe.model_copy(update={"tasks": [t.model_copy(update={"samples": min(SAMPLE, counts[t.name])})
                                                for t in recipe.tasks]})
    examples = build_examples(probe, tokenizer, tasks)
    per_task = {}
    for task in counts:
        lengths = [min(len(tokenizer(e.prompt + e.completion)["input_ids"]), recipe.training.max_length)
                   for e in examples if e.task == task]
        per_task[task] = mean(lengths) if lengths else 0
    epochs = recipe.training.epochs
    items = int(sum(counts.values()) * epochs)
    tokens = int(sum(per_task[t] * counts[t] for t in counts) * epochs)
    return Work("train", recipe.name, label, items, tokens, note)


def eval_work(step: EvalStep, tokenizer, manager, note: str) -> Work:
    from fin_tasks.index import load_members
    from harness.slices import sample_size

    docs = tokens = 0
    for name, task in load_members(manager, step.tasks).items():
        pool = task.test_docs() if task.has_test_docs() else task.validation_docs()
        n = sample_size(len(pool), step.limit) if step.limit else len(pool)
        rows = random.Random(f"estimate:{name}").sample(range(len(pool)), min(SAMPLE, len(pool)))
        if hasattr(task, "sampler") and task.sampler is not None and hasattr(task.sampler, "set_rnd"):
            task.sampler.set_rnd(DEFAULT_SEED)
        per_doc = []
        for row in rows:
            doc = pool[row]
            prompt = len(tokenizer(task.fewshot_context(doc, step.shots))["input_ids"])
            if task.OUTPUT_TYPE == "generate_until":
                answer = int(task.config.generation_kwargs.get("max_gen_toks", 256))
            else:  # every label is scored after the prompt
                answer = sum(len(tokenizer(" " + str(c))["input_ids"]) for c in task.doc_to_choice(doc))
            per_doc.append(prompt + answer)
        docs += n
        tokens += int(mean(per_doc) * n) if per_doc else 0
    return Work("eval", f"{step.checkpoint.label} {step.setting} set {step.set_index}", step.checkpoint.model,
                docs, tokens, note)


def study_work(study: Study) -> list[Work]:
    from fin_tasks.index import task_manager

    manager = task_manager(study.eval.include_paths)
    tokenizers = {m.label: _tokenizer(m.model, _fallback(m.prompt_format)) for m in study.spec.models}
    labels = {r.name: study.trained_model(r) for r in study.train_recipes}
    work = [train_work(r, labels[r.name], *tokenizers[labels[r.name]]) for r in study.train_recipes]
    from merges.run import merge_folders

    # A tuned merge's candidates are one recipe of several merges.
    work += [Work("merge", r.name, r.name.split("-", 1)[0], len(r.models) * len(merge_folders(r)), 0)
             for r in study.merge_recipes]
    counted: dict[tuple, Work] = {}  # every checkpoint of a model scores the same documents
    for tuned in study.tuned:  # each candidate weight scored on development rows, then one merge per seed
        final = next(c for c in study.checkpoints if c.role == "merged" and c.run == tuned.entry)
        for weight in tuned.select.weights:
            candidate = final.model_copy(update={"label": f"{final.model}/{tuned.entry} weight {weight:g}"})
            study_step = EvalStep(checkpoint=candidate, setting="zero-shot", split="development", set_index=-1,
                                  set_name="select", tasks=tuned.select.tasks, limit=tuned.select.limit, shots=0,
                                  folder="")
            found = eval_work(study_step, tokenizers[final.model][0], manager, tokenizers[final.model][1])
            work.append(Work("eval", f"{candidate.label} (development rows)", final.model, found.items, found.tokens,
                             found.note))
        work += [Work("merge", d["name"], final.model, len(d["models"]), 0) for d in tuned.recipes]
    for s in study.evals:
        key = (s.checkpoint.model, tuple(s.tasks), s.shots, s.limit)
        if key not in counted:
            counted[key] = eval_work(s, tokenizers[s.checkpoint.model][0], manager, tokenizers[s.checkpoint.model][1])
        work.append(Work("eval", f"{s.checkpoint.label} {s.setting} set {s.set_index}", s.checkpoint.model,
                         counted[key].items, counted[key].tokens, counted[key].note))
    return work


def read_throughput(study: Study) -> dict | None:
    path = Path(study.root) / THROUGHPUT
    return json.loads(path.read_text()) if path.is_file() else None


# `study probe` on this project's 2-core CPU machine (2026-12-05; bf16 training, fp32 scoring),
# tokens per second: the plan's hours before a probe has run on the machine that will run it.
DEFAULT_SPEED = {"smollm2-135m-instruct": {"train": 256.0, "eval": 698.0},
                 "gemma3-270m": {"train": 258.0, "eval": 303.0}}


def plan_table(study: Study) -> str:
    """The plan: every step's work, and hours from this machine's probe (or, before one, from
    the embedded models' figures measured on a 2-core CPU)."""
    from tabulate import tabulate

    measured = read_throughput(study) or {}
    checkpoint_of = {m.label: m.model for m in study.spec.models}
    rows, totals, defaulted = [], {"train": 0.0, "eval": 0.0}, set()
    for w in study_work(study):
        speed = (measured.get(w.model) or {}).get(f"{w.kind}_tokens_per_second")
        if speed is None and w.kind in ("train", "eval"):
            speed = (DEFAULT_SPEED.get(checkpoint_of.get(w.model, "")) or {}).get(w.kind)
            if speed is not None:
                defaulted.add(w.model)
        hours = w.tokens / speed / 3600 if speed and w.tokens else None
        if hours is not None:
            totals[w.kind] += hours
        rows.append([w.kind, w.label, f"{w.items:,}", f"{w.tokens:,}", f"{hours:.2f}" if hours is not None else "",
                     w.note])
    device = {m: v.get("device") for m, v in measured.items()}
    heads = []
    if measured:
        heads.append(f"Measured speed ({THROUGHPUT}): " + ", ".join(f"{m} on {d}" for m, d in device.items()))
    if defaulted:
        heads.append(f"No probe on this machine for {', '.join(sorted(defaulted))}: hours from the embedded models' "
                     f"speed on a 2-core CPU (2026-12-05); `finharness study probe {study.folder}"
                     f"{' --full' if study.full else ''}` on the machine that will run it measures its own.")
    if not heads:
        heads.append(f"No measured speed yet: `finharness study probe {study.folder}"
                     f"{' --full' if study.full else ''}` on the machine that will run it writes {THROUGHPUT}; "
                     "the plan below is the work only.")
    text = "\n".join(heads) + "\n\n" + tabulate(rows, headers=["step", "name", "examples or docs", "tokens", "hours",
                                                             "note"], tablefmt="github", disable_numparse=True)
    if measured or defaulted:
        text += (f"\n\nTotal: training {totals['train']:.1f} h, evaluation {totals['eval']:.1f} h "
                 "(merges: minutes). Steps already done are counted too.")
    return text


def probe(study: Study, steps: int = 16, documents: int = 8, device: str | None = None, online: bool = False) -> Path:
    """Measure, per study model, training and evaluation tokens per second here: a few
    optimizer steps of the model's first training recipe and a few documents of its first
    evaluation, in a scratch folder (nothing of the study is written but throughput.json).
    Sixteen steps, not four: the first steps' start-up cost made four read at about half the
    speed (SmolLM2, 2026-12-05: 148 tokens/s from four steps, 256 from sixteen)."""
    import shutil
    import tempfile

    import torch

    from fin_tasks.index import task_manager
    from harness.evaluate import EvalRequest, run_eval
    from training.run import train_recipe

    manager = task_manager(study.eval.include_paths)
    out: dict[str, dict] = {}
    scratch = Path(tempfile.mkdtemp(prefix="finharness-probe-"))
    try:
        for model in study.spec.models:
            recipe = next((r for r in study.train_recipes if r.base_model == model.model), None)
            step = next(
                (s for s in study.evals if s.checkpoint.model == model.label and s.checkpoint.role == "vanilla"), None
            )
            tokenizer, note = _tokenizer(model.model, _fallback(model.prompt_format))
            found: dict[str, object] = {"model": model.model, "device": _device_name(device)}
            if recipe is not None:
                per_step = recipe.training.batch_size * recipe.training.grad_accum
                short = recipe.model_copy(update={
                    "name": f"probe-{model.label}", "output_dir": str(scratch), "seeds": None,
                    "tasks": [t.model_copy(update={"samples": max(1, per_step * steps // len(recipe.tasks))})
                              for t in recipe.tasks],
                    "training": recipe.training.model_copy(update={"epochs": 1, "warmup_ratio": 0.0,
                                                                   "report_to": "none"})})
                run = train_recipe(short, online=online)
                found["train_tokens_per_second"] = read_manifest(run, "training_run").data["tokens_per_second"]
            if step is not None:
                shrunk = step.model_copy(update={"limit": documents, "folder": str(scratch / f"eval-{model.label}")})
                work = eval_work(shrunk, tokenizer, manager, note)
                outcome = run_eval(EvalRequest(  # no request cache: a cached answer is not a speed
                    model=step.checkpoint.path, tasks=shrunk.tasks, num_fewshot=shrunk.shots, limit=documents,
                    batch_size=study.eval.batch_size, device=device, output_path=scratch / f"eval-{model.label}",
                    online=online, use_cache=False, include_paths=[Path(p) for p in step.include_paths]))
                # simple_evaluate's wall time, model loading included: a conservative speed.
                found["eval_tokens_per_second"] = work.tokens / outcome.seconds
            out[model.label] = found
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    path = Path(study.root) / THROUGHPUT
    write_atomic(path, json.dumps(out, indent=2) + "\n")
    return path


def _device_name(device: str | None) -> str:
    import os

    import torch

    if torch.cuda.is_available() and device != "cpu":
        return torch.cuda.get_device_name()
    return f"CPU ({os.cpu_count()} cores)"
