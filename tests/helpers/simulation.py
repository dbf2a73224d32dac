"""Study designs in memory, for the inference's simulations (tests/test_inference.py,
scripts/null_rejections.py): a ``Bootstrap`` whose log store serves arrays instead of per-sample
logs, so thousands of designs take seconds and go through the studies' own code."""
from __future__ import annotations

import numpy as np

from study.cells import Bootstrap, Row
from study.log_store import LogStore


class InMemoryLogs(LogStore):
    """A study's logs as arrays: (folder, task) -> (gold labels, predicted labels)."""

    def __init__(self, data: dict):
        super().__init__()
        self.data = data

    def read(self, folder, task, metric, exclude=()):
        golds, preds = self.data[(folder, task)]
        if metric == "acc":
            return {i: float(g == p) for i, (g, p) in enumerate(zip(golds, preds))}
        return {i: (int(g), int(p)) for i, (g, p) in enumerate(zip(golds, preds))}

    def labels(self, folder, task):
        return [str(i) for i in range(max(int(self.data[(folder, task)][0].max()) + 1, 2))]

    def train_golds(self, folder, task):
        return None  # prior-matched guessing then draws with the slice's own label shares


def in_memory(data: dict, resamples: int = 400) -> Bootstrap:
    """The study's own bootstrap over :class:`InMemoryLogs`."""
    return Bootstrap(resamples, 0, logs=InMemoryLogs(data))


def shared_seed_design(rng, task: str, data: dict, docs: int, level: float, shared_sd: float, own_sd: float,
                       correlation: float, seeds: int = 3) -> tuple[Row, Row]:
    """Two trained rows with the same seeds (a merge of seed s against the runs of seed s): each
    seed moves both rows' accuracy, by effects with the given correlation, plus each row's own
    small noise. Both rows have the same true score: every rejection is a false one."""
    golds = rng.permutation(np.arange(docs) % 2)

    def answers(p: float) -> np.ndarray:
        return np.where(rng.random(docs) < float(np.clip(p, 0, 1)), golds, 1 - golds)

    cov = shared_sd ** 2 * np.array([[1.0, correlation], [correlation, 1.0]])
    for s in range(seeds):
        first, second = rng.multivariate_normal([0.0, 0.0], cov)
        data[(f"a{s}", task)] = (golds, answers(level + first + rng.normal(0, own_sd)))
        data[(f"b{s}", task)] = (golds, answers(level + second + rng.normal(0, own_sd)))
    merged = Row("m", "merged", "merge", "zero-shot", "merge", {task: {s: [f"a{s}"] for s in range(seeds)}})
    multi = Row("m", "multi", "multi", "zero-shot", "multi", {task: {s: [f"b{s}"] for s in range(seeds)}})
    return merged, multi


def difficulty_design(rng, task: str, data: dict, docs: int, level: float, seed_sd: float, difficulty_sd: float,
                      shares: list[float], seeds: int = 3) -> tuple[Row, Row]:
    """A vanilla control and a three-seed treatment from the same distribution: documents with a
    difficulty every row shares, seed effects on the logit scale, gold labels in ``shares``."""
    golds = rng.choice(len(shares), size=docs, p=shares)
    difficulty = rng.normal(0, difficulty_sd, docs)  # shared by every row

    def answers(shift: float) -> np.ndarray:
        p = 1 / (1 + np.exp(-(np.log(level / (1 - level)) + shift - difficulty)))
        wrong = (golds + rng.integers(1, len(shares), docs)) % len(shares)
        return np.where(rng.random(docs) < p, golds, wrong)

    data[("vanilla", task)] = (golds, answers(0.0))
    for s in range(seeds):
        data[(f"seed{s}", task)] = (golds, answers(rng.normal(0, seed_sd)))
    trained = Row("m", "single", "ft", "zero-shot", "ft", {task: {s: [f"seed{s}"] for s in range(seeds)}})
    vanilla = Row("m", "vanilla", "", "zero-shot", "zero-shot", {task: {None: ["vanilla"]}})
    return trained, vanilla


DESIGNS = {  # name: (metric, documents, level, seed sd (logit), difficulty sd, label shares)
    "seed-dominated": ("acc", 400, 0.7, 0.4, 0.0, [0.5, 0.5]),
    "shared difficulty": ("acc", 200, 0.7, 0.3, 1.5, [0.5, 0.5]),
    "imbalanced multi-class": ("f1_macro", 200, 0.6, 0.2, 1.5, [0.55, 0.25, 0.15, 0.05]),
}
