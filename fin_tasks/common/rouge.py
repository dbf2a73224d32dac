"""ROUGE-1/2/L and BLEU for the generation tasks (summaries, questions).

ROUGE is scored as lm-eval's own ``cnn_dailymail`` task does: Google's ``rouge_score`` with
the Porter stemmer, F-measure per document, whitespace collapsed, corpus score = the mean.
BLEU (arXiv 2403.09162 reports it beside ROUGE-L) is sacrebleu's sentence BLEU (its default
13a tokenizer and exponential smoothing) per document on a 0-1 scale like ROUGE, the corpus
score its mean: per-document floats keep the per-sample logs usable for paired bootstrap
intervals, which lm-eval's corpus-level ``bleu`` aggregation would not.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import sacrebleu
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


def bleu(reference: str, prediction: str) -> float:
    """Sentence BLEU of one prediction against one reference, divided by 100."""
    return float(sacrebleu.sentence_bleu(_normalise(prediction), [_normalise(reference)]).score) / 100


def process_results_rouge(doc: dict, results: Sequence[str]) -> dict[str, float]:
    """lm-eval ``process_results`` hook: the reference is the doc's ``output`` field."""
    return {**rouge(doc["output"], results[0]), "bleu": bleu(doc["output"], results[0])}
