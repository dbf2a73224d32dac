"""matplotlib set up for files (no display), and one way to save a figure as SVG and PNG.

SVG text stays text (``svg.fonttype: none``), so the files are searchable and testable,
and the same figure gives the same bytes (fixed hash salt, no date). Writes are atomic.
"""
from __future__ import annotations

import io
from pathlib import Path

from plumbing.atomic import write_atomic


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"
    plt.rcParams["svg.hashsalt"] = "finharness"
    # Labels are names a user or submitter chose: "$\frac{$" is text, not mathtext that stops a render.
    plt.rcParams["text.parse_math"] = False
    return plt


def rendered(fig, fmt: str) -> bytes:
    """The figure as ``svg`` or ``png`` bytes (an SVG without a date, so reruns match)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, bbox_inches="tight", dpi=120, metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()


def save(fig, path: Path) -> list[Path]:
    """``path`` with ``.svg`` and ``.png``; closes the figure."""
    written = []
    for fmt in ("svg", "png"):
        target = Path(path).with_suffix(f".{fmt}")
        write_atomic(target, rendered(fig, fmt))
        written.append(target)
    pyplot().close(fig)
    return written
