"""Tables from lm-eval result dicts (tabulate, never hand-formatted)."""
from __future__ import annotations

from typing import Any

from tabulate import tabulate

METRICS = ("acc", "f1_macro", "f1_weighted", "mcc", "missing", "rouge1", "rouge2", "rougeL")


def _value(entry: dict[str, Any], metric: str) -> float | None:
    value = entry.get(f"{metric},none")
    return value if isinstance(value, (int, float)) else None


def score_rows(results: dict[str, Any]) -> list[list[Any]]:
    """One row per group and task, in lm-eval's order; group members indented."""
    rows = []
    entries = {**results.get("groups", {}), **results.get("results", {})}
    n_docs = {name: info.get("effective") for name, info in results.get("n-samples", {}).items()}
    for name, entry in results.get("results", {}).items():
        label = entry.get("alias", name)
        row = [label, n_docs.get(name, "")]
        row += [_value(entries[name], m) for m in METRICS]
        rows.append(row)
    return rows


def score_table(results: dict[str, Any], fmt: str = "github") -> str:
    headers = ["task", "docs", *METRICS]
    rows = score_rows(results)
    # Show only the metric columns some task reported (no `missing` without generative
    # classification, no ROUGE without generation tasks).
    keep = [0, 1] + [i for i in range(2, len(headers)) if any(row[i] is not None for row in rows)]
    headers, rows = [headers[i] for i in keep], [[row[i] for i in keep] for row in rows]
    return tabulate(rows, headers=headers, tablefmt=fmt, floatfmt=".4f", missingval="")


def docs_scored(results: dict[str, Any]) -> int:
    return sum(int(info.get("effective", 0)) for info in results.get("n-samples", {}).values())
