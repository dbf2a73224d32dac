"""The studies' pictures: drawn from a study's own verdicts and table records, checked for what they show."""
from __future__ import annotations

import re

from PIL import Image

from study.claims import Verdict
from study.plots import forest_plot, forgetting_arrows


def verdict(claim_id: str, effect: float, ci: tuple[float, float], outcome: str, paper: str = "") -> Verdict:
    return Verdict(claim_id, "says", "source", "t - c", ["t"], "f1_macro normalized", "sum", 40, 1,
                   effect=effect, ci=ci, p=0.01, p_holm=0.02, mde=0.1, paper=paper,
                   paper_in_metric=float(paper.split()[0]) if paper else None, verdict=outcome)


def test_the_forest_plot_shows_every_claim_its_verdict_and_the_papers_magnitude(tmp_path):
    claims = [verdict("A1-gain", 0.3, (0.2, 0.4), "agrees", "+0.270 f1_weighted"),
              verdict("A2-loss", 0.01, (-0.1, 0.12), "not testable at this size", "-0.199 f1_weighted"),
              verdict("B1-none", -0.2, (-0.3, -0.1), "contradicts")]
    svg, png = forest_plot(claims, tmp_path / "claims")
    text = svg.read_text()
    for v in claims:
        assert f">{v.id}<" in text and f">{v.verdict}<" in text
    # One interval per claim (matplotlib draws each error bar as a LineCollection path) ...
    assert len(re.findall(r'id="LineCollection_\d+"', text)) == 3
    # ... and a cross at the paper's magnitude for the two claims that cite one.
    assert text.count('id="m') >= 1 and Image.open(png).size[0] > 300


def test_forgetting_arrows_go_from_zero_shot_to_each_fine_tuned_and_merged_row(tmp_path):
    records = [
        {"model": "smollm2", "row": "zero-shot", "kind": "vanilla", "setting": "zero-shot",
         "seen f1_macro normalized": 0.10, "unseen f1_macro normalized": 0.30},
        {"model": "smollm2", "row": "few-shot (1)", "kind": "vanilla", "setting": "few-shot",
         "seen f1_macro normalized": 0.12, "unseen f1_macro normalized": 0.31},
        {"model": "smollm2", "row": "FT multi (multi)", "kind": "multi", "setting": "zero-shot",
         "seen f1_macro normalized": 0.60, "unseen f1_macro normalized": 0.05},
        {"model": "smollm2", "row": "merged: task-arithmetic", "kind": "merged", "setting": "zero-shot",
         "seen f1_macro normalized": 0.40, "unseen f1_macro normalized": 0.28},
    ]
    svg, png = forgetting_arrows(records, tmp_path / "forgetting")
    text = svg.read_text()
    assert ">FT multi (multi)<" in text and ">merged: task-arithmetic<" in text and ">zero-shot<" in text
    assert ">few-shot (1)<" not in text  # vanilla settings are the start, not an arrow
    # One arrow patch per fine-tuned or merged row: dropping the merge removes exactly one.
    fewer, _ = forgetting_arrows(records[:3], tmp_path / "fewer")
    patches = [len(re.findall(r'id="patch_\d+"', f.read_text())) for f in (svg, fewer)]
    assert patches[0] - patches[1] == 1
    assert Image.open(png).size[1] > 200
    # Nothing fine-tuned yet: no picture.
    assert forgetting_arrows(records[:2], tmp_path / "none") is None


def test_loss_curves_draw_one_line_per_run_from_its_log(tmp_path):
    from study.plots import loss_curves

    logs = {"gemma-fpb": [{"step": s, "loss": 2.0 / s} for s in range(1, 6)],
            "smollm2-fpb": [{"step": s, "loss": 1.5 / s} for s in range(1, 4)], "not-started": []}
    svg, _ = loss_curves(logs, tmp_path / "loss")
    text = svg.read_text()
    assert ">gemma-fpb<" in text and ">smollm2-fpb<" in text and ">not-started<" not in text
    # The 5-step run's line: a path through 5 points (one move, four line segments).
    paths = [d.split() for d in re.findall(r'<path d="(M [^"]+)"', text)]
    assert any(p.count("L") == 4 and "z" not in p and "Q" not in p for p in paths)
    assert loss_curves({"x": []}, tmp_path / "none") is None
