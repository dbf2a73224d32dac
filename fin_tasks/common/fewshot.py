"""Few-shot samplers that never show the document being asked about, or a duplicate of it.

lm-eval's samplers drop the query document only when the few-shot split *is* the test split
(it passes ``eval_doc=None`` otherwise), and compare whole rows, so a validation row that
repeats a test sentence word for word (45 in Headlines) can sit in the prompt of the very
document it repeats. These samplers draw from the pool less the rows the loader marked
``overlaps_test`` (:mod:`fin_tasks.common.decontamination`), and, when lm-eval does pass the
query, less every row whose normalized text equals it. Task YAMLs name them in
``fewshot_config.sampler``; plain ``lm_eval`` gets the same prompts.
"""
from __future__ import annotations

from typing import Any

from lm_eval.api.samplers import ContextSampler, FirstNSampler

from fin_tasks.common.decontamination import POOL_MARK, query_text
from plumbing.fingerprints import normalize


def _clean(pool: list[dict], eval_doc: dict | None) -> list[dict]:
    kept = [d for d in pool if not (isinstance(d, dict) and d.get(POOL_MARK))]
    if eval_doc is not None:
        try:
            query = normalize(query_text(eval_doc))
            kept = [d for d in kept if d != eval_doc and normalize(query_text(d)) != query]
        except KeyError:
            kept = [d for d in kept if d != eval_doc]
    return kept


class LeakFreeSampler(ContextSampler):
    """lm-eval's default (seeded random) sampler over the pool less test duplicates."""

    def fewshot_docs(self):
        return _clean(super().fewshot_docs(), None)

    def sample(self, n: int, eval_doc: dict[str, Any] | None = None, df=None, **kwargs):
        if df:
            self.replace_df(df)
        pool = _clean(super().fewshot_docs(), eval_doc)
        if n > len(pool):
            raise ValueError(f"{n} few-shot examples asked for, but the pool holds {len(pool)} rows that do not "
                             f"repeat a test document")
        return self.rnd.sample(pool, n) if n else []


class LeakFreeFirstNSampler(FirstNSampler):
    """The first ``n`` rows in order (the paper's fixed examples), skipping test duplicates."""

    def sample(self, n: int, eval_doc=None, df=None, **kwargs):
        pool = _clean(list(self.df), eval_doc)
        if n > len(pool):
            raise ValueError(f"{n} few-shot examples asked for, but the pool holds {len(pool)} rows that do not "
                             f"repeat a test document")
        return pool[:n]
