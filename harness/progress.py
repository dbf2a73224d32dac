"""A progress bar in documents and tasks, for lm-eval backends.

lm-eval's own bars count requests of one kind ("Running loglikelihood requests"): a
FinRED document is 29 of them, a generation document one. :class:`DocProgress` counts a
document as done when its last request is answered, and shows the tasks finished so
far: ``docs (loglikelihood): 120/800 [tasks 1/8]``. The log-likelihood path reports
each answer as its batch finishes, so the backend's batching is untouched;
:func:`by_documents` serves generation a chunk of whole documents at a time.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from tqdm import tqdm

DOCS_PER_CHUNK = 64  # generation: large enough that the backend still batches across documents


class DocProgress:
    def __init__(self, requests: Sequence[Any], kind: str, disable: bool = False):
        # A request without task_name/doc_id (not an lm-eval Instance) is its own document.
        self.doc_of = [(getattr(r, "task_name", None), getattr(r, "doc_id", i)) for i, r in enumerate(requests)]
        self.requests_left = Counter(self.doc_of)
        self.docs_left = Counter(task for task, _ in self.requests_left)
        self.tasks = len(self.docs_left)
        self.bar = tqdm(total=len(self.requests_left), desc=f"docs ({kind})", unit="doc", disable=disable)
        self.bar.set_postfix_str(self._tasks_done())

    def _tasks_done(self) -> str:
        return f"tasks {sum(1 for n in self.docs_left.values() if n == 0)}/{self.tasks}"

    def answered(self, index: int) -> None:
        """Request ``index`` (a position in the list given at start) has its answer."""
        doc = self.doc_of[index]
        self.requests_left[doc] -= 1
        if self.requests_left[doc] == 0:
            self.docs_left[doc[0]] -= 1
            self.bar.update(1)
            if self.docs_left[doc[0]] == 0:
                self.bar.set_postfix_str(self._tasks_done())

    def close(self) -> None:
        self.bar.close()


def by_documents(requests: Sequence[Any], run: Callable[[list[Any]], list[Any]], kind: str,
                 disable: bool = False, docs_per_chunk: int | None = None) -> list[Any]:
    """``run`` over ``requests`` a chunk of whole documents at a time, answers in request order."""
    docs_per_chunk = docs_per_chunk or DOCS_PER_CHUNK
    progress = DocProgress(requests, kind, disable)
    indices_of: dict[tuple[Any, Any], list[int]] = {}
    for i, doc in enumerate(progress.doc_of):
        indices_of.setdefault(doc, []).append(i)
    keys = list(indices_of)
    answers: list[Any] = [None] * len(requests)
    for start in range(0, len(keys), docs_per_chunk):
        indices = [i for key in keys[start: start + docs_per_chunk] for i in indices_of[key]]
        for i, answer in zip(indices, run([requests[i] for i in indices]), strict=True):
            answers[i] = answer
            progress.answered(i)
    progress.close()
    return answers
