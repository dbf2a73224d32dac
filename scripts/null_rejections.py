"""How often the claims' t-test rejects a true null, on simulated study designs.

    python scripts/null_rejections.py [--designs 2000]     # about 70 s on 2 cores

Each design is a control (vanilla) and a three-seed treatment drawn from the same
distribution, so every rejection is a false one. It goes through the studies' own code
(``study.cells.Bootstrap.estimate``: normalized scores, the document and seed components) and
prints the rejection rates at .05 and .01 with Welch-Satterthwaite's df and with the seeds'
own df where seeds carry over a quarter of the variance (``Estimate.conservative_df``, the
rules of 2026-12-07):

- seed-dominated: a binary task, 400 documents, seed sd 0.08 (tests/test_inference.py keeps
  this design at .05);
- shared difficulty: every document has a difficulty all rows share (hard documents are hard
  for every checkpoint), seed effects on the logit scale;
- imbalanced multi-class: four labels at 55/25/15/5%, macro-F1, shared difficulty;
- shared seeds: two trained rows with the same three seeds (a merge of seed s against the
  runs of seed s), whose seed effects move together (correlation 0.8) or trade off (-0.8);
  the studies compare them seed by seed (``study.cells._paired_seeds``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.simulation import DESIGNS, difficulty_design, in_memory, shared_seed_design  # noqa: E402


def rejections(name: str, found) -> list[list[str]]:
    rows = []
    for rule, p_of in (("Welch-Satterthwaite df", lambda e: e.p_value()),
                       ("seeds' df where seeds > 25%", lambda e: e.p_value(e.conservative_df))):
        p = np.array([p_of(e) for e in found])
        rows.append([name, rule, f"{np.mean(p < 0.05):.3f}", f"{np.mean(p < 0.01):.4f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", type=int, default=2000)
    args = parser.parse_args()
    rows = []
    for name, (metric, docs, level, seed_sd, difficulty_sd, shares) in DESIGNS.items():
        rng = np.random.default_rng(5)
        data: dict = {}
        pairs = [difficulty_design(rng, f"t{i}", data, docs, level, seed_sd, difficulty_sd, shares)
                 for i in range(args.designs)]
        boot = in_memory(data)
        found = [boot.estimate([(t, 1.0), (c, -1.0)], [f"t{i}"], lambda _: metric, normalized=True)
                 for i, (t, c) in enumerate(pairs)]
        rows += rejections(name, found)
    for correlation in (0.8, -0.8):
        rng = np.random.default_rng(5)
        data = {}
        pairs = [shared_seed_design(rng, f"t{i}", data, docs=200, level=0.7, shared_sd=0.08, own_sd=0.01,
                                    correlation=correlation) for i in range(args.designs)]
        boot = in_memory(data)
        found = [boot.estimate([(a, 1.0), (b, -1.0)], [f"t{i}"], lambda _: "acc", normalized=True)
                 for i, (a, b) in enumerate(pairs)]
        rows += rejections(f"shared seeds, correlation {correlation:+.1f}", found)
    print(tabulate(rows, headers=["design", "df", "rejections at .05", "at .01"], tablefmt="github"))
    print(f"\n{args.designs} null designs each (2 SE at .05: +/-{2 * (0.05 * 0.95 / args.designs) ** 0.5:.3f})")


if __name__ == "__main__":
    main()
