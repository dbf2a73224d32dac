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
import re
import tempfile
from datetime import datetime, timezone
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evidence.measures import shown_metric
from leaderboard.render import FILTERS, facets
from leaderboard.store import Board, Entry
from leaderboard.table import board_columns, board_rows, sort_rows

DEFAULT_COLUMNS = (
    "id",
    "unseen_rank",
    "model",
    "model_type",
    "base_model",
    "num_fewshot",
    "seen",
    "unseen",
    "seen_norm",
    "unseen_norm",
    "unseen_norm_ci",
    "collapsed",
    "contaminated",
    "unseen_clean_norm",
    "unseen_change",
)
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
    copy of the per-sample logs, on the metric the board's table shows (one rule: ``shown_metric``)."""
    from evidence.result_files import samples_file
    from evidence.stats import percentile_interval, read_samples, replicates, task_draws
    from fin_tasks.common.metrics import aggregation_of

    out = {}
    for task, scores in sorted(entry.scores.items()):
        name = shown_metric(metric, scores)
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


_MARKDOWN_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def md(value: Any) -> str:
    """Submitter-controlled text as Markdown that renders as the same text: every ASCII
    punctuation mark backslash-escaped (CommonMark), so no image, link, HTML tag, code span or
    table cell can be opened by it; line breaks become spaces."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def details_markdown(entry: Entry, row: Mapping[str, Any], metric: str) -> str:
    """The drill-down text of one entry. Every string a submitter chose goes through :func:`md`;
    the recipe is not here but in a code component (:func:`build_app`), where no fence can close."""
    lines = [f"### #{entry.id} {md(entry.model)}",
             f"{md(entry.model_type)}, {md(entry.weight_type)} weights"
             + (f" on {md(entry.base_model)}" if entry.base_model else "")
             + f"; {entry.settings.get('num_fewshot', 0)}-shot; revision {md(entry.revision[:12])}.", ""]
    if row.get("reference_id") is not None:
        lines.append(f"Change against entry #{row['reference_id']}: unseen {row['unseen_change']:+.4f} "
                     "(negative = forgetting)"
                     if row.get("unseen_change") is not None else f"Reference: entry #{row['reference_id']}")
        lines.append("")
    lines += ["| task | score | 95% CI |", "|---|---|---|"]
    for task, (point, low, high) in task_intervals(entry, metric).items():
        lines.append(f"| {md(task)} | {point:.4f} | [{low:.3f}, {high:.3f}] |")
    baselines = entry.metadata.get("baselines") or {}
    if baselines:
        lines += ["", "| task | predicted labels | gold labels | collapsed | best trivial macro-F1 | "
                      "normalized macro-F1 |", "|---|---|---|---|---|---|"]
        for task, b in sorted(baselines.items()):
            histogram = ", ".join(f"{md(label)} {md(count)}" for label, count in (b.get("predicted") or {}).items())
            gold = ", ".join(f"{md(label)} {md(count)}" for label, count in (b.get("gold") or {}).items())
            best = max((s.get("f1_macro", 0.0) for s in (b.get("baselines") or {}).values()), default=0.0)
            score = (entry.scores.get(task) or {}).get("f1_macro")
            normalized = (score - best) / (1 - best) if score is not None and best < 1 else float("nan")
            lines.append(f"| {md(task)} | {histogram} | {gold} | {md(b.get('collapsed') or '')} | {best:.3f} | "
                         f"{normalized:+.3f} |")
    return "\n".join(lines)


class LiveBoard:
    """The board as the app shows it, read again on every page load: an entry submitted while the
    app runs appears on the next load, and the page says when the board was last read."""

    def __init__(self, board: Board, metric: str):
        self.board, self.metric = board, metric
        self.read()

    def read(self) -> None:
        self.entries = self.board.entries()
        rows, self.tasks = board_rows(self.entries, self.metric)
        self.rows = sort_rows(rows, "unseen_norm") if rows else rows
        self.by_id = {e.id: e for e in self.entries}
        for row in self.rows:
            row["facets"] = facets(self.by_id[row["id"]], row)
        self.columns = board_columns(self.tasks)
        self.shown = [c for c in DEFAULT_COLUMNS if c in self.columns] + list(self.tasks)
        self.read_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

    def facet_values(self, key: str) -> list[str]:
        return [ALL, *sorted({r["facets"][key] for r in self.rows})]

    def header(self, title: str) -> str:
        return (f"# {md(title)}\n{len(self.entries)} entries (board read {self.read_at}; reload the page to read it "
                f"again), ranked by unseen macro-F1 normalized to the best trivial answer (0 = no better than a "
                f"trivial answer; unclipped). `unseen_rank` gives each rank with its band: from 1 + the entries "
                f"significantly better to N - those significantly worse (paired bootstrap, Holm), among entries "
                f"scored on the same tasks and documents. Each task shows `{self.metric}`.")


def build_app(board: Board, metric: str = "acc", title: str = "finharness leaderboard"):
    import gradio as gr
    import pandas as pd

    live = LiveBoard(board, metric)
    pictures = Path(tempfile.mkdtemp(prefix="finharness-board-"))

    def table(search, picked, *choices):
        chosen = dict(zip([k for k, _ in FILTERS], choices))
        kept = filter_rows(live.rows, search, **chosen)
        cols = [c for c in live.columns if c in (picked or live.shown)]
        def cell(value):  # one number format for every score (0.3000, not 0.3 beside 0.3333)
            return f"{value:.4f}" if isinstance(value, float) else value

        return pd.DataFrame([[cell(r.get(c)) for c in cols] for r in kept], columns=cols)

    def drill(label):
        row = next((r for r in live.rows if _label(r) == label), None)
        if row is None:
            return "Choose an entry.", None, None
        entry = live.by_id[row["id"]]
        image = lineage_png(entry, pictures)
        return details_markdown(entry, row, metric), entry.recipe_text, str(image) if image else None

    def reload(search, picked, *choices):
        """On each page load: the board read again; the reader's search and choices kept."""
        live.read()
        kept = [value if value in live.facet_values(key) else ALL for (key, _), value in zip(FILTERS, choices)]
        picked = [c for c in picked or live.shown if c in live.columns] + [t for t in live.tasks if t not in live.shown]
        return (live.header(title), gr.update(choices=live.columns, value=picked),
                *[gr.update(choices=live.facet_values(key), value=v) for (key, _), v in zip(FILTERS, kept)],
                table(search, picked, *kept), gr.update(choices=[_label(r) for r in live.rows]))

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        header = gr.Markdown(f"# {md(title)}\nReading the board...", elem_id="header")
        with gr.Row():
            search = gr.Textbox(label="search", placeholder="model name", elem_id="search")
            selects = [gr.Dropdown(choices=live.facet_values(key), value=ALL, label=label, elem_id=f"filter-{key}")
                       for key, label in FILTERS]
        picked = gr.CheckboxGroup(choices=live.columns, value=live.shown, label="columns", elem_id="columns")
        grid = gr.Dataframe(value=table("", live.shown, *[ALL] * len(FILTERS)), interactive=False, elem_id="board",
                            wrap=True)
        entry = gr.Dropdown(choices=[_label(r) for r in live.rows], value=None, label="entry details", elem_id="entry")
        details = gr.Markdown(elem_id="details")
        # A code component shows the text as text: a recipe cannot close a fence and turn into markup.
        recipe = gr.Code(label="recipe", language="yaml", interactive=False, elem_id="recipe")
        lineage = gr.Image(label="lineage", elem_id="lineage", interactive=False)
        for control in (search, picked, *selects):
            control.change(table, [search, picked, *selects], grid)
        entry.change(drill, entry, [details, recipe, lineage])
        app.load(reload, [search, picked, *selects], [header, picked, *selects, grid, entry])
    return app


MAX_UPLOAD = "1kb"  # nothing of the board's is uploaded; Gradio's /upload answers every app


def serve(board: Board, host: str = "127.0.0.1", port: int = 7860, metric: str = "acc") -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app = build_app(board, metric)
    try:
        # The app is read-only: Gradio's upload route still takes files, so cap them (V12).
        app.launch(server_name=host, server_port=port, share=False, inbrowser=False, max_file_size=MAX_UPLOAD)
    except OSError as err:  # Gradio: "Cannot find empty port in range: 7860-7860"
        raise ValueError(f"leaderboard serve: cannot listen on {host}:{port} ({err}); "
                         "stop what holds the port or give --port") from None
