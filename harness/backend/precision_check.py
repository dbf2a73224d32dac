"""Scoring in bfloat16 with float32's answers (``--dtype bfloat16-checked``).

bfloat16 keeps 8 bits of mantissa, so a log-likelihood summed over a label's tokens moves (by
up to 0.37 on the financial suite @100 scored wholly in bfloat16; the scored positions'
log-softmax runs in float32 here). A document's answer is the label with the
highest log-likelihood (``acc``, F1, MCC) or the highest per character (``acc_norm``), so it can
change only where two labels are closer than their two errors together. This module finds those
documents from what bfloat16 gave:

1. **Measure the error.** The first ``PROBES`` documents of each task are scored in both
   precisions; the task's error bound is the largest gap per answer token among them.
2. **Find the close calls.** A document is re-scored in float32 when its chosen label is not ahead
   of every other by ``SAFETY`` times their two bounds (raw, and per character), or when it has a
   single request (no answer to protect: its value is the metric).

Every answer then equals float32's wherever the measured bound holds, and the benchmark checks
each document (``benchmarks/bench_shared_prefix.py --workload bf16``). Log-likelihoods of
documents left in bfloat16 keep bfloat16's error; :class:`CheckedTask` says how many and how large.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PROBES = 16  # documents per task scored in both precisions to measure the error
SAFETY = 2.0  # how far beyond the measured bound a margin must reach to be trusted

DocKey = tuple[str, int]  # (task, document id)


@dataclass(frozen=True)
class Scored:
    """One log-likelihood request as the check sees it."""

    doc: DocKey
    tokens: int  # answer tokens summed into the log-likelihood
    chars: int  # the continuation's length in characters (acc_norm divides by it)


@dataclass(frozen=True)
class CheckedTask:
    """What ``bfloat16-checked`` did on one task."""

    task: str
    documents: int
    probed: int  # scored in both precisions to measure the error
    rescored: int  # answered in float32 (the probed ones included)
    largest_gap: float  # largest |bfloat16 - float32| log-likelihood among the probed requests
    per_token_bound: float  # largest gap per answer token: the bound the close calls are judged by
    float32_docs: tuple[int, ...]  # the documents answered in float32; the rest keep bfloat16's log-likelihoods


def documents(requests: Sequence[Scored]) -> dict[DocKey, list[int]]:
    """Request indices per document, in request order."""
    out: dict[DocKey, list[int]] = {}
    for i, request in enumerate(requests):
        out.setdefault(request.doc, []).append(i)
    return out


def probe_documents(docs: dict[DocKey, list[int]], per_task: int = PROBES) -> set[DocKey]:
    """The first ``per_task`` documents (by id) of each task."""
    by_task: dict[str, list[DocKey]] = {}
    for key in sorted(docs):
        by_task.setdefault(key[0], []).append(key)
    return {key for keys in by_task.values() for key in keys[:per_task]}


def per_token_bounds(requests: Sequence[Scored], low: Sequence[float], high: Sequence[float],
                     probed: set[DocKey]) -> dict[str, tuple[float, float]]:
    """(largest gap, largest gap per answer token) per task, over the probed documents' requests."""
    out: dict[str, tuple[float, float]] = {}
    for request, a, b in zip(requests, low, high, strict=True):
        if request.doc not in probed:
            continue
        gap = abs(a - b)
        largest, per_token = out.get(request.doc[0], (0.0, 0.0))
        out[request.doc[0]] = (max(largest, gap), max(per_token, gap / max(1, request.tokens)))
    return out


def close_calls(requests: Sequence[Scored], scores: Sequence[float], docs: dict[DocKey, list[int]],
                bounds: dict[str, float], safety: float = SAFETY) -> set[DocKey]:
    """Documents whose answer the error could flip: the chosen label (raw, or per character) is not
    ahead of every other label by ``safety`` times both labels' bounds. A task with no bound (none
    of its documents probed) has every document re-scored."""
    flagged = set()
    for key, members in docs.items():
        bound = bounds.get(key[0])
        if bound is None or len(members) < 2:
            flagged.add(key)
            continue
        for per_char in (False, True):
            def value(i: int) -> float:
                return scores[i] / max(1, requests[i].chars) if per_char else scores[i]

            def error(i: int) -> float:
                raw = safety * bound * max(1, requests[i].tokens)
                return raw / max(1, requests[i].chars) if per_char else raw

            top = max(members, key=value)
            if any(value(top) - value(i) <= error(top) + error(i) for i in members if i != top):
                flagged.add(key)
                break
    return flagged


def summarize(docs: dict[DocKey, list[int]], probed: set[DocKey], rescored: set[DocKey],
              bounds: dict[str, tuple[float, float]]) -> list[CheckedTask]:
    """One :class:`CheckedTask` per task, in task order."""
    exact = rescored | probed
    out = []
    for task in sorted({key[0] for key in docs}):
        largest, per_token = bounds.get(task, (0.0, 0.0))
        in_float32 = tuple(sorted(k[1] for k in exact if k[0] == task))
        out.append(CheckedTask(task=task, documents=sum(1 for k in docs if k[0] == task),
                               probed=sum(1 for k in probed if k[0] == task), rescored=len(in_float32),
                               largest_gap=largest, per_token_bound=per_token, float32_docs=in_float32))
    return out
