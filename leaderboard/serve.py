"""``finharness leaderboard serve``: the board as a Gradio app (``pip install 'finharness[board]'``).

The same SQLite board and the same rows as ``show`` and ``render`` (ranked by the
normalized unseen score, a constant answer cannot win it), with what a reader of the Open
LLM / Open FinLLM leaderboards expects: search by name; filters by method, base model,
shots and task set (the static page's facets); a choice of columns; and a drill-down per
entry: per-task scores with 95% bootstrap intervals from the stored per-sample logs, the
predicted-label histogram and collapse flag, forgetting against its reference, the recipe,
and for a merge its parents and weights drawn as a lineage graph. Offline on 127.0.0.1 by
default; nothing is fetched (Gradio's analytics are off).
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leaderboard.render import FILTERS, facets
from leaderboard.store import Board, Entry
from leaderboard.table import board_columns, board_rows, sort_rows

DEFAULT_COLUMNS = ("id", "unseen_rank", "model", "model_type", "base_model", "num_fewshot", "seen", "unseen", "seen_norm",
                   "unseen_norm", "unseen_norm_ci", "collapsed", "contaminated", "unseen_clean_norm", "forgetting")
ALL = "all"


def _label(row: Mapping[str, Any]) -> str:
    return f"#{row['id']} {row['model']}"


def filter_rows(rows: list[dict], search: str = "", **chosen: str) -> list[dict]:
    """The rows whose name contains ``search`` (any case) and whose facets match every choice."""
    text = (search or "").strip().lower()
    return [r for r in rows if text in r["model"].lower()
            and all(value in (None, "", ALL) or r["facets"][key] == value for key, value in chosen.items())]


def task_intervals(entry: Entry, metric: str, resamples: int = 1000) -> dict[str, tuple[float, float, float]]:
    """Per task: the score and its 95% bootstrap interval over documents, from the board's own
    copy of the per-sample logs (the metric the board shows, else the task's first one)."""
    from fin_tasks.common.metrics import aggregation_of
    from harness.result_files import samples_file
    from harness.stats import percentile_interval, read_samples, replicates, task_draws

    out = {}
    for task, scores in sorted(entry.scores.items()):
        name = metric if metric in scores else next(iter(scores), None)
        try:
            values = list(read_samples(samples_file(Path(entry.results_path), task), name).values())
        except (ValueError, OSError, TypeError):
            continue
        if not values:
            continue
        point, reps = replicates(values, aggregation_of(name), task_draws(task, len(values), resamples))
        low, high = percentile_interval(reps)
        out[f"{task} ({name})"] = (point, low, high)
    return out


def merge_parents(entry: Entry) -> list[tuple[str, float | None]]:
    """A merge's inputs and their weights, from the merge recipe kept with the entry."""
    import yaml

    try:
        recipe = yaml.safe_load(entry.recipe_text or "")
    except yaml.YAMLError:
        return []
    models = recipe.get("models") if isinstance(recipe, dict) else None
    if not isinstance(models, list):
        return []
    found = []
    for m in models:
        if isinstance(m, dict) and m.get("model"):
            weight = m.get("weight", (m.get("parameters") or {}).get("weight"))
            found.append((str(m["model"]), weight if isinstance(weight, (int, float)) else None))
    return found


def lineage_png(entry: Entry, folder: Path) -> Path | None:
    """Base model and parents (with weights) -> this entry, drawn with matplotlib."""
    from plumbing.plots import pyplot, save

    parents = merge_parents(entry)
    if not parents and not entry.base_model:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.5 * max(len(parents), 1) + 1.6), layout="constrained")
    ax.axis("off")
    boxes = [(Path(p).name or p, w) for p, w in parents] or [(entry.base_model, None)]
    n = len(boxes)
    target = (0.8, 0.5)
    ax.text(*target, entry.model, ha="center", va="center", fontsize=9,
            bbox={"boxstyle": "round", "facecolor": "#e8e0f5"})
    for i, (name, weight) in enumerate(boxes):
        y = 0.5 if n == 1 else 0.9 - 0.8 * i / (n - 1)
        ax.text(0.15, y, name, ha="center", va="center", fontsize=8, bbox={"boxstyle": "round", "facecolor": "#f3f3f3"})
        ax.annotate("", target, (0.3, y), arrowprops={"arrowstyle": "->", "color": "#555"})
        if weight is not None:
            ax.text(0.45, y + (target[1] - y) * 0.3 + 0.03, f"weight {weight:g}", fontsize=7, color="#555")
    if parents and entry.base_model:
        ax.text(0.8, 0.1, f"base: {entry.base_model}", ha="center", fontsize=8, color="#555")
    return save(fig, folder / f"lineage-{entry.id}")[1]


def details_markdown(entry: Entry, row: Mapping[str, Any], metric: str) -> str:
    """The drill-down text of one entry."""
    lines = [f"### #{entry.id} {entry.model}",
             f"{entry.model_type}, {entry.weight_type} weights"
             + (f" on `{entry.base_model}`" if entry.base_model else "")
             + f"; {entry.settings.get('num_fewshot', 0)}-shot; revision `{entry.revision[:12]}`.", ""]
    if row.get("reference_id") is not None:
        lines.append(f"Forgetting against entry #{row['reference_id']}: unseen {row['forgetting']:+.4f}"
                     if row.get("forgetting") is not None else f"Reference: entry #{row['reference_id']}")
        lines.append("")
    lines += ["| task | score | 95% CI |", "|---|---|---|"]
    for task, (point, low, high) in task_intervals(entry, metric).items():
        lines.append(f"| {task} | {point:.4f} | [{low:.3f}, {high:.3f}] |")
    baselines = entry.metadata.get("baselines") or {}
    if baselines:
        lines += ["", "| task | predicted labels | gold labels | collapsed | best trivial macro-F1 | "
                      "normalized macro-F1 |", "|---|---|---|---|---|---|"]
        for task, b in sorted(baselines.items()):
            histogram = ", ".join(f"{label} {count}" for label, count in (b.get("predicted") or {}).items())
            gold = ", ".join(f"{label} {count}" for label, count in (b.get("gold") or {}).items())
            best = max((s.get("f1_macro", 0.0) for s in (b.get("baselines") or {}).values()), default=0.0)
            score = (entry.scores.get(task) or {}).get("f1_macro")
            normalized = (score - best) / (1 - best) if score is not None and best < 1 else float("nan")
            lines.append(f"| {task} | {histogram} | {gold} | {b.get('collapsed') or ''} | {best:.3f} | "
                         f"{normalized:+.3f} |")
    if entry.recipe_text:
        lines += ["", "Recipe:", "", "```yaml", entry.recipe_text.rstrip(), "```"]
    return "\n".join(lines)


def build_app(board: Board, metric: str = "acc", title: str = "finharness leaderboard"):
    import gradio as gr
    import pandas as pd

    entries = board.entries()
    rows, tasks = board_rows(entries, metric)
    rows = sort_rows(rows, "unseen_norm") if rows else rows
    by_id = {e.id: e for e in entries}
    for row in rows:
        row["facets"] = facets(by_id[row["id"]], row)
    columns = board_columns(tasks)
    shown = [c for c in DEFAULT_COLUMNS if c in columns] + list(tasks)
    pictures = Path(tempfile.mkdtemp(prefix="finharness-board-"))

    def table(search, picked, *choices):
        chosen = dict(zip([k for k, _ in FILTERS], choices))
        kept = filter_rows(rows, search, **chosen)
        cols = [c for c in columns if c in (picked or shown)]
        def cell(value):
            return round(value, 4) if isinstance(value, float) else value

        return pd.DataFrame([[cell(r.get(c)) for c in cols] for r in kept], columns=cols)

    def drill(label):
        row = next((r for r in rows if _label(r) == label), None)
        if row is None:
            return "Choose an entry.", None
        entry = by_id[row["id"]]
        image = lineage_png(entry, pictures)
        return details_markdown(entry, row, metric), str(image) if image else None

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"# {title}\n{len(entries)} entries, ranked by unseen macro-F1 normalized to the best trivial "
                    f"answer (0 = no better than a trivial answer; unclipped). `unseen_rank` gives each rank with its "
                    f"95% band over document resamples: entries whose bands overlap are tied. "
                    f"Each task shows `{metric}`.")
        with gr.Row():
            search = gr.Textbox(label="search", placeholder="model name", elem_id="search")
            selects = [gr.Dropdown(choices=[ALL, *sorted({r["facets"][key] for r in rows})], value=ALL, label=label,
                                   elem_id=f"filter-{key}") for key, label in FILTERS]
        picked = gr.CheckboxGroup(choices=columns, value=shown, label="columns", elem_id="columns")
        grid = gr.Dataframe(value=table("", shown, *[ALL] * len(FILTERS)), interactive=False, elem_id="board",
                            wrap=True)
        entry = gr.Dropdown(choices=[_label(r) for r in rows], value=None, label="entry details", elem_id="entry")
        details = gr.Markdown(elem_id="details")
        lineage = gr.Image(label="lineage", elem_id="lineage", interactive=False)
        for control in (search, picked, *selects):
            control.change(table, [search, picked, *selects], grid)
        entry.change(drill, entry, [details, lineage])
    return app


def serve(board: Board, host: str = "127.0.0.1", port: int = 7860, metric: str = "acc") -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    build_app(board, metric).launch(server_name=host, server_port=port, share=False, inbrowser=False)
