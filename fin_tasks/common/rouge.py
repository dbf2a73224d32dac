"""ROUGE-1/2/L for the generation tasks (summaries, questions).

Scored as lm-eval's own ``cnn_dailymail`` task does: Google's ``rouge_score`` with the
Porter stemmer, F-measure per document, whitespace collapsed, corpus score = the mean.
Per-document floats keep the per-sample logs usable for paired bootstrap intervals.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from rouge_score import rouge_scorer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def rouge(reference: str, prediction: str) -> dict[str, float]:
    """F-measure of each ROUGE type for one prediction against one reference."""
    scores = _scorer().score(_normalise(reference), _normalise(prediction))
    return {name: float(scores[name].fmeasure) for name in ROUGE_TYPES}


def process_results_rouge(doc: dict, results: Sequence[str]) -> dict[str, float]:
    """lm-eval ``process_results`` hook: the reference is the doc's ``output`` field."""
    return rouge(doc["output"], results[0])
