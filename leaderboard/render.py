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
                "collapsed", "seen_norm_ci", "unseen_norm_ci"}
LABELS = {"seen_gain": "seen gain", "model_type": "type", "weight_type": "weights", "base_model": "base",
          "chat_template": "chat", "num_fewshot": "shots", "seen_norm": "seen (norm.)", "unseen_norm": "unseen (norm.)",
          "seen_norm_ci": "seen (norm.) 95% CI", "unseen_norm_ci": "unseen (norm.) 95% CI"}


def scatter_svg(points: list[tuple[str, str, float, float]], size: int = 320, pad: int = 40) -> str:
    """Seen (x) against unseen (y); axes from 0 to 1 (scores are rates or ROUGE)."""
    # Extra room on the right for the labels of points near x = 1.
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 2 * pad + 140}" height="{size + 2 * pad}" '
             f'role="img" aria-label="seen vs unseen scatter" class="scatter">',
             f'<rect x="{pad}" y="{pad}" width="{size}" height="{size}" fill="none" stroke="#999"/>']
    for tick in (0, 0.25, 0.5, 0.75, 1):
        x, y = pad + tick * size, pad + size - tick * size
        parts.append(f'<text x="{x:.1f}" y="{pad + size + 14}" font-size="10" text-anchor="middle">{tick:g}</text>')
        parts.append(f'<text x="{pad - 6}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{tick:g}</text>')
    parts.append(f'<line x1="{pad}" y1="{pad + size}" x2="{pad + size}" y2="{pad}" stroke="#ddd"/>')
    parts.append(f'<text x="{pad + size / 2}" y="{pad + size + 30}" font-size="11" text-anchor="middle">seen</text>')
    parts.append(f'<text x="12" y="{pad + size / 2}" font-size="11" transform="rotate(-90 12 {pad + size / 2})" '
                 'text-anchor="middle">unseen</text>')
    for label, kind, seen, unseen in points:
        # Positions clamp to the axes (an MCC can be negative); the tooltip keeps the value.
        cx, cy = pad + min(max(seen, 0), 1) * size, pad + size - min(max(unseen, 0), 1) * size
        colour = COLOURS.get(kind, "#444")
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{colour}" data-label="{escape(label)}">'
                     f'<title>{escape(label)}: seen {seen:.4f}, unseen {unseen:.4f}</title></circle>')
        parts.append(f'<text x="{cx + 7:.1f}" y="{cy - 6:.1f}" font-size="10">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(task: str, bars: list[tuple[str, str, float]], width: int = 260, bar: int = 16) -> str:
    """One task: a horizontal bar per entry, scores from 0 to 1."""
    label_w, height = 170, len(bars) * (bar + 4) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + width + 50}" height="{height}" '
             f'role="img" aria-label="{escape(task)}" class="bars">']
    for i, (label, kind, value) in enumerate(bars):
        y = 4 + i * (bar + 4)
        w = max(value, 0.0) * width
        short = label if len(label) <= 30 else label[:29] + "\u2026"  # the tooltip has it whole
        parts.append(f'<text x="{label_w - 4}" y="{y + bar - 4}" font-size="10" text-anchor="end">{escape(short)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar}" fill="{COLOURS.get(kind, "#444")}">'
                     f'<title>{escape(label)}: {value:.4f}</title></rect>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar - 4}" font-size="10">{value:.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


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


FILTERS = (("method", "method"), ("base", "base model"), ("shots", "shots"), ("taskset", "task set"))


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
    model type and the recipe), the base model (itself for a vanilla entry), shots, task set."""
    method = {"pretrained": "vanilla", "instruct": "vanilla"}.get(entry.model_type, entry.model_type)
    if method == "fine-tuned" and _fticl_k(entry.recipe_text) > 0:
        method = "FTICL"
    tasks = entry.settings.get("tasks") or []
    return {"method": method, "base": entry.base_model or entry.model, "shots": str(row["num_fewshot"]),
            "taskset": f"{len(tasks)} tasks: {', '.join(tasks)}" if len(tasks) <= 4 else
                       f"{len(tasks)} tasks: {', '.join(tasks[:3])}, ..."}


def _columns(tasks: list[str]) -> list[dict[str, Any]]:
    columns = []
    for key in (*INFO_COLUMNS, "recipe", *SUMMARY_COLUMNS, *tasks):
        columns.append({
            "key": key, "label": LABELS.get(key, key), "title": key,
            "type": "text" if key in TEXT_COLUMNS else "number",
            "signed": key in ("seen_gain", "forgetting"),
        })
    return columns


def render_html(entries: list[Entry], metric: str = "acc", title: str = "finharness leaderboard",
                roles: Mapping[str, str] | None = None) -> str:
    rows, tasks = board_rows(entries, metric, roles)
    rows = sort_rows(rows, "unseen_norm")  # a constant answer cannot win it
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
        scatter=scatter_svg(points), bars=bars, colours=COLOURS, filters=filters,
    )


def render(entries: list[Entry], out: Path, **kwargs: Any) -> Path:
    write_atomic(Path(out), render_html(entries, **kwargs))
    return Path(out)
