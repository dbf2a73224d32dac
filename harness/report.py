"""Tables from lm-eval result dicts (tabulate, never hand-formatted)."""
from __future__ import annotations

from typing import Any

from tabulate import tabulate

from harness.baselines import NORMALIZED  # the normalized column

METRICS = ("acc", "f1_macro", "f1_weighted", "mcc", "missing", "rouge1", "rouge2", "rougeL", "bleu")  # their order first


def metric_columns(results: dict[str, Any]) -> list[str]:
    """Every metric some task reported: the suite's in their usual order, then any other
    (a user task's own ``metric_list``) in the order the results hold them."""
    found: list[str] = []
    for entry in {**results.get("groups", {}), **results.get("results", {})}.values():
        for key, value in entry.items():
            name, sep, _ = key.partition(",")
            if sep and not name.endswith("_stderr") and isinstance(value, (int, float)) and name not in found:
                found.append(name)
    return [m for m in METRICS if m in found] + [m for m in found if m not in METRICS]


def _value(entry: dict[str, Any], metric: str) -> float | None:
    value = entry.get(f"{metric},none")
    return value if isinstance(value, (int, float)) else None




def score_rows(results: dict[str, Any], metrics: list[str] | None = None) -> list[list[Any]]:
    """One row per group and task, in lm-eval's order; under each classification task, what
    its trivial answers score on the same documents (harness/baselines.py)."""
    metrics = metric_columns(results) if metrics is None else metrics
    baselines = (results.get("finharness") or {}).get("baselines") or {}
    rows = []
    entries = {**results.get("groups", {}), **results.get("results", {})}
    n_docs = {name: info.get("effective") for name, info in results.get("n-samples", {}).items()}
    for name, entry in results.get("results", {}).items():
        label = entry.get("alias", name)
        found = baselines.get(name)
        if found and found.get("collapsed"):
            label += " (collapsed)"
        row = [label, n_docs.get(name, "")]
        row += [_value(entries[name], m) for m in metrics]
        row.append((found or {}).get("normalized", {}).get(NORMALIZED))
        rows.append(row)
        for baseline, scores in (found or {}).get("baselines", {}).items():
            answer = (found.get("answers") or {}).get(baseline)
            rows.append([f"· {baseline}" + (f": {answer}" if answer else ""), ""]
                        + [scores.get(m) for m in metrics] + [None])
    return rows


def collapse_notes(results: dict[str, Any]) -> list[str]:
    """One line per task where one label took >= 90% of the model's answers."""
    notes = []
    for name, found in ((results.get("finharness") or {}).get("baselines") or {}).items():
        if found.get("collapsed"):
            share = found["predicted"][found["collapsed"]] / found["docs"]
            if found["collapsed"] == "(none)":
                notes.append(f"{name}: {share:.0%} of the answers name no label")
            else:
                notes.append(f"{name}: {share:.0%} of the answers are {found['collapsed']!r}; its score mostly says "
                             "how common that label is in the slice")
    return notes


def score_table(results: dict[str, Any], fmt: str = "github") -> str:
    # Only the metric columns some task reported (no `missing` without generative
    # classification, no ROUGE without generation tasks), and any metric a user's task adds.
    metrics = metric_columns(results)
    has_baselines = bool((results.get("finharness") or {}).get("baselines"))
    headers = ["task", "docs", *metrics] + ([f"{NORMALIZED} normalized"] if has_baselines else [])
    rows = score_rows(results, metrics)
    if not has_baselines:
        rows = [row[:-1] for row in rows]
    table = tabulate(rows, headers=headers, tablefmt=fmt, floatfmt=".4f", missingval="")
    if has_baselines:
        table += ("\n\nUnder each classification task: what answering the slice's most common label "
                  "(majority), the training split's most common label (train prior) or a uniformly random "
                  f"label scores on the same documents. {NORMALIZED} normalized = (score - b) / (1 - b), b the "
                  "best of them, clipped at 0.")
        notes = collapse_notes(results)
        if notes:
            table += "\nCollapsed (one label for >= 90% of the documents):\n" + "\n".join(f"- {n}" for n in notes)
    return table


def docs_scored(results: dict[str, Any]) -> int:
    return sum(int(info.get("effective", 0)) for info in results.get("n-samples", {}).values())
