"""Pictures of a study's answers, drawn with matplotlib next to its tables (SVG and PNG).

- ``claims.svg``: a forest plot, one line per claim: the effect and its 95% interval, the
  paper's magnitude where the claim cites one, and the verdict.
- ``forgetting.svg`` (seen/unseen studies): per model, arrows from zero-shot to each
  fine-tuned and merged row in the plane (seen, unseen) of normalized macro-F1, so what
  fine-tuning bought (right) and what it cost on unseen tasks (down) read at a glance.

(matplotlib through ``plumbing.plots``: SVG text stays text, writes are atomic.)
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from plumbing.plots import pyplot as _pyplot
from plumbing.plots import save as _save

COLOURS = {"agrees": "#2ca02c", "contradicts": "#d62728", "inconclusive": "#7f7f7f"}


def forest_plot(verdicts: Sequence, path: Path) -> list[Path]:
    """Each claim's effect with its interval (and the paper's magnitude as a cross)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(verdicts) + 1.2), layout="constrained")
    for i, v in enumerate(reversed(list(verdicts))):
        colour = COLOURS.get(v.verdict, "#ff7f0e")  # orange: not testable
        if v.effect is not None:  # a claim not run (or left with no task) has no effect to draw
            ax.errorbar(v.effect, i, xerr=[[v.effect - v.ci[0]], [v.ci[1] - v.effect]], fmt="o", color=colour,
                        capsize=3)
        if getattr(v, "paper_in_metric", None) is not None:  # the paper's magnitude in the claim's metric
            ax.plot(v.paper_in_metric, i, "x", color="black")
        ax.text(1.02, i, v.verdict, transform=ax.get_yaxis_transform(), va="center", fontsize=8, color=colour)
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_yticks(range(len(verdicts)), [v.id for v in reversed(list(verdicts))], fontsize=8)
    ax.set_xlabel("effect (treatment - control), 95% interval; x: the paper's magnitude in the claim's metric")
    ax.set_title("Claims", fontsize=10)
    return _save(fig, path)


def forgetting_arrows(records: Sequence[dict], path: Path, metric: str = "f1_macro normalized") -> list[Path] | None:
    """Zero-shot -> fine-tuned / merged, per model, in the (seen, unseen) plane."""
    key_seen, key_unseen = f"seen {metric}", f"unseen {metric}"
    plt = _pyplot()
    models = list(dict.fromkeys(r["model"] for r in records))
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 4.2), squeeze=False, layout="constrained")
    drawn = False
    for ax, model in zip(axes[0], models):
        rows = [r for r in records if r["model"] == model and key_seen in r and key_unseen in r]
        start = next((r for r in rows if r.get("kind") == "vanilla" and r.get("setting") == "zero-shot"), None)
        if start is None:
            ax.set_visible(False)
            continue
        ax.plot(start[key_seen], start[key_unseen], "o", color="black")
        ax.annotate("zero-shot", (start[key_seen], start[key_unseen]), fontsize=8, xytext=(4, 4),
                    textcoords="offset points")
        for i, r in enumerate(r for r in rows if r is not start and r.get("kind") != "vanilla"):
            colour = "#9467bd" if r.get("kind") == "merged" else "#ff7f0e"
            ax.annotate("", (r[key_seen], r[key_unseen]), (start[key_seen], start[key_unseen]),
                        arrowprops={"arrowstyle": "->", "color": colour})
            # Labels stacked downwards: fine-tuned and merged rows often land on one point.
            ax.annotate(r["row"], (r[key_seen], r[key_unseen]), fontsize=7, color=colour, xytext=(3, -9 - 9 * i),
                        textcoords="offset points")
            drawn = True
        values = [v for r in rows for v in (r[key_seen], r[key_unseen])]
        ax.set_xlim(min(0, *values) - 0.05, max(0.1, *values) + 0.1)  # 0 (no better than trivial) always in view
        ax.set_ylim(min(0, *values) - 0.05, max(0.1, *values) + 0.1)
        ax.set_title(model, fontsize=10)
        ax.set_xlabel(f"seen ({metric})")
        ax.set_ylabel(f"unseen ({metric})")
        ax.axhline(0, color="#ccc", lw=0.6)
        ax.axvline(0, color="#ccc", lw=0.6)
    if not drawn:
        plt.close(fig)
        return None
    return _save(fig, path)


def loss_curves(logs: dict[str, Sequence[dict]], path: Path) -> list[Path] | None:
    """Training loss (answer-token cross-entropy) against optimizer step, one line per run."""
    logs = {name: rows for name, rows in logs.items() if rows}
    if not logs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for name, rows in logs.items():
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], marker=".", label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (answer tokens)")
    ax.legend(fontsize=7, ncols=2)
    ax.set_title("Training runs", fontsize=10)
    return _save(fig, path)
