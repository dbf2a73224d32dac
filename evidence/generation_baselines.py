"""What a trivial answer scores on a generation task: the start of its own input.

A ROUGE-L score means nothing until one sees what copying the article's first sentence
scores on the same documents. The summarization literature's trivial answers are the input's first
sentence (Lead-1, XSum's) and its first three (Lead-3, CNN/DailyMail's); for question
generation the first sentence of the context is the answer a model that only copies gives.
Each is scored per document by the task's own scorer (``fin_tasks.common.rouge``: ROUGE-1/2/L
F-measure and sentence BLEU against the ``output`` field) and averaged over the documents a
row scored, as the classification tasks' majority and random answers are
(``evidence.baselines``). A model's normalized score is then ``(s - b) / (1 - b)``, ``b`` the
better lead on that metric: at 0 it does no better than copying the first sentence(s).

Sentences end at ``.``, ``!`` or ``?`` followed by white space, or at a line break: no model or
download is needed (nltk's punkt is not packaged offline), and an abbreviation that splits a
sentence early makes the lead shorter, never longer than the input.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fin_tasks.common.rouge import process_results_rouge

GENERATION_METRICS = ("rouge1", "rouge2", "rougeL", "bleu")
LEADS = {"first sentence": 1, "first three sentences": 3}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")


def sentences(text: str) -> list[str]:
    """The text's sentences, in order (none empty)."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def lead(text: str, count: int) -> str:
    """The text's first ``count`` sentences, joined by a space."""
    return " ".join(sentences(text)[:count])


def is_generation_row(row: Mapping[str, Any]) -> bool:
    """An lm-eval sample row of a finharness generation task: an input, a reference, ROUGE scores."""
    doc = row.get("doc") or {}
    return isinstance(doc.get("input"), str) and isinstance(doc.get("output"), str) and "rougeL" in row


def lead_values(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, dict[str, float]]]:
    """Per lead answer: doc id -> each generation metric of that answer on the document."""
    return {name: {int(r["doc_id"]): process_results_rouge(r["doc"], [lead(r["doc"]["input"], count)])
                   for r in rows}
            for name, count in LEADS.items()}


def lead_scores(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = GENERATION_METRICS
                ) -> dict[str, dict[str, float]]:
    """Each lead answer's mean score over ``rows`` (lm-eval sample rows), per metric asked for."""
    if not rows or not all(is_generation_row(r) for r in rows):
        return {}
    wanted = [m for m in metrics if m in GENERATION_METRICS]
    return {name: {m: float(np.mean([v[m] for v in by_doc.values()])) for m in wanted}
            for name, by_doc in lead_values(rows).items()}


def run_lead_baselines(results: Mapping[str, Any], samples: Mapping[str, list[dict]]) -> dict[str, dict[str, Any]]:
    """Every generation task of an lm-eval run: its lead answers' scores and the model's
    ROUGE-L normalized to the better one (unclipped): the run record's ``generation_baselines``
    (evidence.records.RunRecord)."""
    out: dict[str, dict[str, Any]] = {}
    for task, rows in samples.items():
        found = lead_scores(rows)
        if not found:
            continue
        scores = results["results"].get(task, {})
        normalized = {}
        for metric in GENERATION_METRICS:
            score, best = scores.get(f"{metric},none"), max(f[metric] for f in found.values())
            if isinstance(score, (int, float)) and best < 1:
                normalized[metric] = (score - best) / (1 - best)
        out[task] = {"docs": len(rows), "baselines": found, "normalized": normalized}
    return out
