"""``finharness leaderboard render``: one static HTML page, no network and no JS library.

The table sorts by any column (a few lines of plain JavaScript); the plots are SVG drawn
here, so the page opens from a file or any static host. Recipes are copied into the page
(``<details>``), so a link to an entry's recipe never dangles.
"""
from __future__ import annotations

from html import escape
from pathlib import Path
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape

from leaderboard.store import Entry
from leaderboard.table import INFO_COLUMNS, SUMMARY_COLUMNS, board_rows, sort_rows
from plumbing.atomic import write_atomic

TEMPLATES = Path(__file__).with_name("templates")
COLOURS = {"pretrained": "#1f77b4", "instruct": "#2ca02c", "fine-tuned": "#ff7f0e", "merged": "#9467bd"}
TEXT_COLUMNS = {"model", "model_type", "weight_type", "base_model", "precision", "chat_template", "revision", "recipe",
                "collapsed", "seen_norm_ci", "unseen_norm_ci", "lineage", "contaminated"}
RANK_COLUMNS = {"unseen_rank", "seen_rank"}  # "3 (1-7)": shown as text, sorted by the rank
LABELS = {
    "unseen_rank": "rank (band)",
    "seen_rank": "seen rank (band)",
    "seen_change": "seen Δ",
    "unseen_change": "unseen Δ (− = forgetting)",
    "model_type": "type",
    "weight_type": "weights",
    "base_model": "base",
    "chat_template": "chat",
    "num_fewshot": "shots",
    "seen_norm": "seen (norm.)",
    "unseen_norm": "unseen (norm.)",
    "seen_norm_ci": "seen (norm.) 95% CI",
    "unseen_norm_ci": "unseen (norm.) 95% CI",
    "seen_clean_norm": "seen clean (norm.)",
    "unseen_clean_norm": "unseen clean (norm.)",
}


def _inline_svg(fig, css_class: str, label: str) -> str:
    """A matplotlib figure as inline SVG for the page (text kept as text), tagged for styling and tests."""
    from plumbing.plots import pyplot, rendered

    svg = rendered(fig, "svg").decode()
    pyplot().close(fig)
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype: the SVG sits inside HTML
    return svg.replace("<svg ", f'<svg class="{css_class}" role="img" aria-label="{escape(label)}" ', 1)


def scatter_svg(points: list[tuple[str, str, float, float]]) -> str:
    """Seen (x) against unseen (y), one point per entry, coloured by model type (matplotlib)."""
    from plumbing.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
    collection = ax.scatter([p[2] for p in points], [p[3] for p in points],
                            c=[COLOURS.get(p[1], "#444") for p in points], s=30)
    collection.set_gid("scatter-points")
    for label, _, seen, unseen in points:
        ax.annotate(label.split()[0], (seen, unseen), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.plot([0, 1], [0, 1], color="#ddd", lw=0.8)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("seen")
    ax.set_ylabel("unseen")
    return _inline_svg(fig, "scatter", "seen vs unseen scatter")


def bars_svg(task: str, bars: list[tuple[str, str, float]]) -> str:
    """One task: a horizontal bar per entry (matplotlib)."""
    from plumbing.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 0.28 * len(bars) + 0.8), layout="constrained")
    names = [label if len(label) <= 30 else label[:29] + "\u2026" for label, _, _ in bars]
    drawn = ax.barh(range(len(bars)), [max(v, 0.0) for _, _, v in bars],
                    color=[COLOURS.get(kind, "#444") for _, kind, _ in bars])
    for i, (rect, (_, _, value)) in enumerate(zip(drawn, bars)):
        rect.set_gid(f"bar-{task}-{i}")
        ax.text(rect.get_width() + 0.01, i, f"{value:.3f}", va="center", fontsize=7)
    ax.set_yticks(range(len(bars)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15)
    return _inline_svg(fig, "bars", task)


def safe_link(url: str | None) -> str:
    """``url`` when it is an http(s) link, else "": a submitted ``javascript:`` or ``data:``
    URL must never become an ``href`` (escaping alone does not stop it running)."""
    if not url:
        return ""
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return ""
    return url.strip() if scheme in ("http", "https") else ""


FILTERS = (("method", "method"), ("family", "model family"), ("base", "base model"), ("shots", "shots"),
           ("taskset", "task set"))


def _fticl_k(recipe_text: str | None) -> int:
    """Demonstrations per training prompt in a training recipe's text (0: none, or not a recipe)."""
    import yaml

    try:
        recipe = yaml.safe_load(recipe_text or "")
        k = (recipe.get("fticl") or {}).get("k", 0) if isinstance(recipe, dict) else 0
        return k if isinstance(k, int) else 0
    except (yaml.YAMLError, AttributeError):
        return 0


def facets(entry: Entry, row: Mapping[str, Any]) -> dict[str, str]:
    """What the page filters on: the method (vanilla / fine-tuned / merged / FTICL, from the
    model type and the recipe), the model family (the architecture the evaluation recorded),
    the base model (itself for a vanilla entry), shots, task set."""
    method = {"pretrained": "vanilla", "instruct": "vanilla"}.get(entry.model_type, entry.model_type)
    if method == "fine-tuned" and _fticl_k(entry.recipe_text) > 0:
        method = "FTICL"
    tasks = entry.settings.get("tasks") or []
    return {"method": method, "family": entry.metadata.get("architecture") or "unknown",
            "base": entry.base_model or entry.model, "shots": str(row["num_fewshot"]),
            "taskset": f"{len(tasks)} tasks: {', '.join(tasks)}" if len(tasks) <= 4 else
                       f"{len(tasks)} tasks: {', '.join(tasks[:3])}, ..."}


# First, and frozen while the rest scroll: who the entry is and what it is ranked on.
LEADING = ("id", "model", "unseen_rank", "unseen_norm", "unseen_norm_ci")
FROZEN = ("id", "model")
DEFAULT_SORT = "unseen_norm"


def _columns(tasks: list[str]) -> list[dict[str, Any]]:
    columns = []
    for key in dict.fromkeys((*LEADING, *INFO_COLUMNS, "recipe", *SUMMARY_COLUMNS, *tasks)):
        columns.append({
            "key": key, "label": LABELS.get(key, key), "title": key,
            "type": "rank" if key in RANK_COLUMNS else "text" if key in TEXT_COLUMNS else "number",
            "signed": key in ("seen_change", "unseen_change", "retention_change"),
            "frozen": key in FROZEN,
            "sorted": "descending" if key == DEFAULT_SORT else None,  # the order the rows arrive in
        })
    return columns


def render_html(entries: list[Entry], metric: str = "acc", title: str = "finharness leaderboard",
                roles: Mapping[str, str] | None = None) -> str:
    rows, tasks = board_rows(entries, metric, roles)
    rows = sort_rows(rows, DEFAULT_SORT)  # a constant answer cannot win it
    by_id = {e.id: e for e in entries}
    for row in rows:
        entry = by_id[row["id"]]
        row["recipe_href"] = f"#recipe-{entry.id}" if entry.recipe_text else safe_link(entry.recipe)
        row["chat_template"] = "on" if row["chat_template"] else "off"
    for row in rows:
        row["facets"] = facets(by_id[row["id"]], row)
    filters = [(key, label, sorted({r["facets"][key] for r in rows})) for key, label in FILTERS]
    name = {r["id"]: f'#{r["id"]} {r["model"]}' for r in rows}
    points = [(name[r["id"]], r["model_type"], r["seen"], r["unseen"]) for r in rows
              if r["seen"] is not None and r["unseen"] is not None]
    bars = [(task, bars_svg(task, [(name[r["id"]], r["model_type"], r[task]) for r in rows if r[task] is not None]))
            for task in tasks]
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("board.html.j2").render(
        title=title, metric=metric, rows=rows, columns=_columns(tasks), entries=entries, safe_link=safe_link,
        scatter=scatter_svg(points), plotted=len(points), bars=bars, colours=COLOURS, filters=filters,
    )


def render(entries: list[Entry], out: Path, **kwargs: Any) -> Path:
    write_atomic(Path(out), render_html(entries, **kwargs))
    return Path(out)
