"""Which documents a ``--limit`` run scores: seeded and stratified by gold label, never "the first N".

The first 40 FinCausal test documents are all ``noise``; a first-N slice can hold one class
only, and every score on it is a statement about that class. A stratified slice gives each
gold label its share of the ``N`` documents (largest remainder), so the slice keeps the
split's label prior, drawn with a seeded generator per label; the chosen document indices go
to lm-eval's own ``samples`` mechanism (task -> indices), so ``lm_eval --samples FILE``
scores exactly the same documents.

A label whose share of ``N`` rounds to no document gets none (FinRED: 29 relations in 40
documents), and the run lists it (:func:`unsampled_labels`): forcing one document per label
would make such a slice nearly uniform (FinRED's majority share 0.075 instead of 0.126, and
another majority label). Results written before this rule (their ``slice`` record has no
``rule``) used the old one, ``floor``: at least one document per label; the board's
verification rebuilds each slice by the rule it was drawn with.

``random`` draws ``N`` documents without replacement (seeded); ``first`` is lm-eval's own
``--limit`` (kept for comparisons with runs made that way).
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from plumbing.vocabulary import DEFAULT_SEED, DEFAULT_SLICE, SLICE_METHODS, SliceMethod, SliceRule

Method = SliceMethod
METHODS = SLICE_METHODS
Rule = SliceRule
RULE: Rule = "prior"  # how a stratified slice allocates documents to labels (see above)


def sample_size(total: int, limit: float) -> int:
    """lm-eval's rule: a limit below 1 is a fraction of the split (rounded up), else a count."""
    return min(total, int(math.ceil(total * limit)) if limit < 1 else int(limit))


def select(golds: Sequence[Any], limit: float, method: str = DEFAULT_SLICE, seed: int = DEFAULT_SEED,
           rule: Rule = RULE) -> list[int]:
    """Document indices to score, ascending. ``golds``: each document's gold label (None when a
    task has none, e.g. a summary: stratified then draws at random)."""
    if method not in METHODS:
        raise ValueError(f"--sample must be one of {', '.join(METHODS)}, not {method!r}")
    total = len(golds)
    n = sample_size(total, limit)
    if method == "first" or n >= total:
        return list(range(n))
    rng = np.random.default_rng(seed)
    if method == "random" or any(g is None for g in golds):
        return sorted(int(i) for i in rng.choice(total, n, replace=False))
    by_label: dict[Any, list[int]] = defaultdict(list)
    for i, gold in enumerate(golds):
        by_label[gold].append(i)
    labels = sorted(by_label, key=str)
    quota = _allocate({label: len(by_label[label]) for label in labels}, n, floor=rule == "floor")
    chosen: list[int] = []
    for label in labels:
        members = by_label[label]
        picked = np.random.default_rng([seed, labels.index(label)]).choice(len(members), quota[label], replace=False)
        chosen += [members[int(j)] for j in picked]
    return sorted(chosen)


def _allocate(sizes: dict[Any, int], n: int, floor: bool = False) -> dict[Any, int]:
    """``n`` documents across labels in proportion to their sizes (largest remainder); with
    ``floor`` (the old rule), every label at least one when ``n`` is at least the number of labels."""
    total = sum(sizes.values())
    least = 1 if floor and n >= len(sizes) else 0
    quota = {label: min(size, max(least, int(n * size / total))) for label, size in sizes.items()}
    # Hand out what is left by largest remainder, then take back from the largest if over.
    remainders = sorted(
        sizes, key=lambda label: (-(n * sizes[label] / total - int(n * sizes[label] / total)), str(label))
    )
    while sum(quota.values()) < n:
        for label in remainders:
            if sum(quota.values()) >= n:
                break
            if quota[label] < sizes[label]:
                quota[label] += 1
    while sum(quota.values()) > n:
        label = max(quota, key=lambda lab: (quota[lab], str(lab)))
        quota[label] -= 1
    return quota


def unsampled_labels(task, chosen: Sequence[int]) -> list[str]:
    """The task's labels (of its scored split) that no chosen document has."""
    docs = task.eval_docs
    golds = task_golds(task)
    present = {golds[i] for i in chosen}
    missing = sorted({g for g in golds if g is not None} - present, key=str)
    first = docs[0] if len(docs) and isinstance(docs[0], dict) else {}
    choices = first.get("choices") if isinstance(first.get("choices"), list) else None
    return [str(choices[g]) if choices and isinstance(g, int) and 0 <= g < len(choices) else str(g) for g in missing]


def task_golds(task) -> list[Any]:
    """Each scored document's gold label (``doc["gold"]``), or None for tasks without one."""
    docs = task.eval_docs
    if "gold" in (getattr(docs, "column_names", None) or ()):
        return list(docs["gold"][:])  # one column read: a Dataset (or its Column) iterates row by row
    return [doc.get("gold") if isinstance(doc, dict) else None for doc in docs]


def development_slice(golds: Sequence[Any], limit: float | None, excluded: set[int], method: str = DEFAULT_SLICE,
                      seed: int = DEFAULT_SEED) -> list[int]:
    """Development rows: ``limit`` documents (all, without one) drawn as :func:`select` draws,
    from the split's documents outside ``excluded`` (the study's test slices, or the rows that
    repeat a test document). Indices into the whole split, ascending."""
    rest = [i for i in range(len(golds)) if i not in excluded]
    if limit is None:
        return rest
    chosen = select([golds[i] for i in rest], limit, method, seed)
    return [rest[j] for j in chosen]
