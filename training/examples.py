"""Training examples rendered by lm-eval from the same task definitions evaluation uses.

A prompt is what lm-eval's ``ConfigurableTask.fewshot_context`` returns for the document
(with the chat template for ``instruct``), so training and evaluation cannot drift apart.
FTICL demonstrations are fed through the same call: a stand-in sampler hands lm-eval
``k`` seeded documents from the training split (never the example itself), and lm-eval
lays them out exactly as it lays out few-shot examples at evaluation time.

Leak-free by default: rows whose text (or a word 8-gram of it) is in a test document of any
packaged task, or of the recipe's own tasks, are neither trained on nor shown as
demonstrations (``leak_free: false`` keeps them); :class:`Examples` counts what was skipped.
Each example keeps the texts it showed the model (its document and its demonstrations), from
which the run records its lineage (:mod:`plumbing.fingerprints`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from fin_tasks.index import task_manager
from training.recipe import RecipeError, TaskSpec, TrainRecipe


@dataclass(frozen=True)
class Example:
    task: str
    doc_index: int  # row of the task's training split
    prompt: str
    completion: str  # the answer (and the chat turn's end); the only tokens with loss
    demos: tuple[int, ...] = ()  # training-split rows shown as FTICL demonstrations
    texts: tuple[str, ...] = ()  # the document texts shown (its own, then its demonstrations'): the lineage


class Examples(list):
    """The recipe's examples, and per task how many rows leak-free sampling skipped."""

    def __init__(self, items=(), skipped: dict[str, int] | None = None):
        super().__init__(items)
        self.skipped = skipped or {}


class _FixedSampler:
    """Stands in for lm-eval's few-shot sampler: returns the demonstrations we chose."""

    def __init__(self, docs: Sequence[dict]):
        self.docs = list(docs)

    def sample(self, n: int, eval_doc=None, df=None, **kwargs) -> list[dict]:
        return self.docs[:n]


def load_tasks(names: Sequence[str], manager=None, include_paths: Sequence[str | Path] = ()) -> dict[str, Any]:
    """lm-eval task objects by name; an unknown name or a group is an error naming it."""
    from fin_tasks.index import deprecated_alias, include_paths as checked, near_names

    manager = manager or task_manager(checked(include_paths))
    known = manager.all_tasks
    names = [deprecated_alias(n) for n in names]
    for name in names:
        if name not in known:
            raise RecipeError(f"tasks: unknown task {name!r}{near_names(name, known)}")
        if name in manager.all_groups or name in manager.all_tags:
            raise RecipeError(f"tasks: {name!r} is a group; list its tasks one by one")
    loaded = manager.load(list(names))["tasks"]
    return {name: loaded[name] for name in names}


def chat_renderer(tokenizer) -> Callable[..., str]:
    """The chat-template call lm-eval's HF backend makes (``HFLM.apply_chat_template``)."""

    def render(messages: list[dict], add_generation_prompt: bool = True) -> str:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt,
        )

    return render


def answer_text(task, doc: dict, gen_prefix: str | None = None) -> str:
    """The target as lm-eval writes it in a few-shot example (label text, not its index);
    with ``gen_prefix`` (a format whose answers open with e.g. "label:"), as the whole
    assistant turn lm-eval writes for it."""
    turn = task.build_qa_turn(
        q=task.doc_to_text(doc), c=task.doc_to_choice(doc) if task.config.doc_to_choice else None,
        a=task.doc_to_target(doc), gen_prefix=gen_prefix, tgt_delim=task.config.target_delimiter, few_delim="",
    )
    return turn[-1].content


def render_example(task, doc: dict, demos: Sequence[dict], prompt_format: str, tokenizer) -> tuple[str, str]:
    """(prompt, completion) for one document, with ``demos`` as in-context examples."""
    answer = answer_text(task, doc)
    prefix = task.doc_to_prefix(doc)  # as lm-eval's build_all_requests passes it
    original = getattr(task, "sampler", None)
    task.sampler = _FixedSampler(demos)
    try:
        if prompt_format == "base":
            prompt = task.fewshot_context(doc=doc, num_fewshot=len(demos), gen_prefix=prefix)
            return prompt, task.config.target_delimiter + answer + (tokenizer.eos_token or "")
        seen: list[list[dict]] = []
        render = chat_renderer(tokenizer)

        def capture(messages, add_generation_prompt=True):
            seen.append(messages)
            return render(messages, add_generation_prompt)

        prompt = task.fewshot_context(
            doc=doc, num_fewshot=len(demos), apply_chat_template=True,
            fewshot_as_multiturn=True, chat_template=capture, gen_prefix=prefix,
        )
    finally:
        task.sampler = original
    messages = seen[-1]
    if prefix:  # the prompt ends inside the assistant turn it opened; the answer completes that turn
        messages = messages[:-1]
        answer = answer_text(task, doc, gen_prefix=prefix)
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": answer}], tokenize=False)
    if not full.startswith(prompt):
        raise RecipeError(
            "prompt_format: instruct needs a chat template whose prompt with the generation "
            "prompt is a prefix of the conversation with the answer; this tokenizer's is not")
    return prompt, full[len(prompt):]


def sample_rows(n_rows: int, samples: int | None, seed: int, task_name: str, split: str = "training",
                eligible: Sequence[int] | None = None) -> list[int]:
    """Seeded rows to train on: all of ``eligible`` (default: every row), or ``samples`` of them."""
    pool = list(range(n_rows)) if eligible is None else list(eligible)
    if samples is None:
        return pool
    if samples > len(pool):
        skipped = n_rows - len(pool)
        raise RecipeError(
            f"tasks: {task_name} asks for {samples} samples but its {split} split has {len(pool)}"
            + (f" ({skipped} of its {n_rows} rows overlap a test document; leak_free: false keeps them)"
               if skipped else ""))
    return sorted(random.Random(f"{seed}:{task_name}").sample(pool, samples))


def leak_free_rows(task, docs, extra_tests: Sequence[Any] = ()) -> list[int]:
    """Rows whose text overlaps no test document of the packaged suite or of ``extra_tests`` tasks."""
    from fin_tasks.common.decontamination import docs_texts, suite_test_fingerprint, task_test_fingerprint

    texts = tuple(docs_texts(task, docs))
    clean = np.ones(len(texts), dtype=bool)
    for fingerprint in dict.fromkeys((suite_test_fingerprint(), *(task_test_fingerprint(t) for t in extra_tests))):
        clean &= ~np.asarray(_overlapping(texts, fingerprint))
    return [int(i) for i in np.flatnonzero(clean)]


@lru_cache(maxsize=64)
def _overlapping(texts: tuple[str, ...], fingerprint) -> tuple[bool, ...]:
    from fin_tasks.common.decontamination import overlap_flags

    return overlap_flags(fingerprint, texts)


def split_docs(task, spec: TaskSpec):
    """The documents a recipe task trains on: its training split, or the split it names."""
    if spec.split is None:
        if not task.has_training_docs():
            raise RecipeError(f"tasks: {spec.name} has no training split")
        return task.training_docs()
    if spec.split not in task.dataset:
        raise RecipeError(
            f"tasks: {spec.name} has no split {spec.split!r} (has: {', '.join(task.dataset)})")
    docs = task.dataset[spec.split]
    return task.config.process_docs(docs) if task.config.process_docs else docs


def drawn_rows(task, docs, spec: TaskSpec, seed: int, leak_free: bool = True,
               recipe_tasks: Sequence[Any] = ()) -> tuple[list[int], list[int]]:
    """The rows a recipe task may train on (leak-free ones, or all) and the seeded rows it trains on:
    the one place the draw is made, so a script that must avoid a run's rows computes the same ones."""
    eligible = leak_free_rows(task, docs, recipe_tasks) if leak_free else list(range(len(docs)))
    rows = sample_rows(len(docs), spec.samples, seed, spec.name, spec.split or "training",
                       eligible if leak_free else None)
    return eligible, rows


def build_examples(recipe: TrainRecipe, tokenizer, tasks: dict[str, Any] | None = None) -> Examples:
    """Every training example of the recipe, in a seeded, reproducible order per task."""
    from fin_tasks.common.decontamination import task_text

    if recipe.prompt_format == "instruct" and not getattr(tokenizer, "chat_template", None):
        raise RecipeError("prompt_format: instruct, but the base model's tokenizer has no chat template")
    tasks = (
        tasks if tasks is not None else load_tasks([t.name for t in recipe.tasks], include_paths=recipe.include_paths)
    )
    examples = Examples()
    for spec in recipe.tasks:
        task = tasks[spec.name]
        docs = split_docs(task, spec)
        eligible, rows = drawn_rows(task, docs, spec, recipe.seed, recipe.leak_free, list(tasks.values()))
        examples.skipped[spec.name] = len(docs) - len(eligible)
        k = recipe.fticl.k
        if k and k >= len(eligible):
            raise RecipeError(f"fticl.k: {k} demonstrations but {spec.name} has {len(eligible)} training docs"
                              + (" that overlap no test document" if recipe.leak_free else ""))
        rng = random.Random(f"{recipe.fticl.seed}:fticl:{spec.name}")
        for row in rows:
            demo_rows: tuple[int, ...] = ()
            if k:
                # Drawn from the whole (leak-free) training split, never the example itself.
                pool = [eligible[i] for i in rng.sample(range(len(eligible)), k + 1)] if recipe.leak_free \
                    else rng.sample(range(len(docs)), k + 1)
                demo_rows = tuple([r for r in pool if r != row][:k])
            prompt, completion = render_example(
                task, docs[row], [docs[r] for r in demo_rows], recipe.prompt_format, tokenizer)
            texts = tuple(task_text(task, docs[r]) for r in (row, *demo_rows))
            examples.append(Example(spec.name, row, prompt, completion, demo_rows, texts))
    return examples
