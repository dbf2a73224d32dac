"""A progress bar in documents and tasks, for lm-eval backends.

lm-eval's own bars count requests of one kind ("Running loglikelihood requests"): a
FinRED document is 29 of them, a generation document one. Here the backend's requests
are served in chunks of whole documents, and the bar counts documents scored, with
the tasks finished so far: ``docs (loglikelihood): 120/800 [tasks 1/8]``.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from tqdm import tqdm

DOCS_PER_CHUNK = 64  # large enough that the backend still batches across documents


def by_documents(requests: Sequence[Any], run: Callable[[list[Any]], list[Any]], kind: str,
                 disable: bool = False, docs_per_chunk: int | None = None) -> list[Any]:
    """``run`` over ``requests`` a chunk of whole documents at a time, answers in request order."""
    docs_per_chunk = docs_per_chunk or DOCS_PER_CHUNK
    docs: dict[tuple[str, Any], list[int]] = defaultdict(list)
    for i, request in enumerate(requests):
        docs[(getattr(request, "task_name", None), getattr(request, "doc_id", i))].append(i)
    per_task = Counter(task for task, _ in docs)
    left = dict(per_task)
    answers: list[Any] = [None] * len(requests)
    keys = list(docs)
    bar = tqdm(total=len(keys), desc=f"docs ({kind})", unit="doc", disable=disable)
    bar.set_postfix_str(f"tasks 0/{len(per_task)}")
    for start in range(0, len(keys), docs_per_chunk):
        chunk = keys[start: start + docs_per_chunk]
        indices = [i for key in chunk for i in docs[key]]
        for i, answer in zip(indices, run([requests[i] for i in indices]), strict=True):
            answers[i] = answer
        for task, _ in chunk:
            left[task] -= 1
        bar.update(len(chunk))
        bar.set_postfix_str(f"tasks {sum(1 for n in left.values() if n == 0)}/{len(per_task)}")
    bar.close()
    return answers
