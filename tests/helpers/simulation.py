"""Study designs in memory, for the inference's simulations (tests/test_inference.py,
scripts/null_rejections.py): a ``Bootstrap`` whose reads serve arrays instead of per-sample
logs, so thousands of designs take seconds and go through the studies' own code."""
from __future__ import annotations

from study.cells import Bootstrap


class InMemory(Bootstrap):
    """A study's logs as arrays: (folder, task) -> (gold labels, predicted labels)."""

    def __init__(self, data: dict, resamples: int = 400):
        super().__init__(resamples, 0)
        self.data = data

    def read(self, folder, task, metric):
        golds, preds = self.data[(folder, task)]
        if metric == "acc":
            return {i: float(g == p) for i, (g, p) in enumerate(zip(golds, preds))}
        return {i: (int(g), int(p)) for i, (g, p) in enumerate(zip(golds, preds))}

    def labels(self, folder, task):
        return [str(i) for i in range(max(int(self.data[(folder, task)][0].max()) + 1, 2))]

    def train_golds(self, folder, task):
        return None  # prior-matched guessing then draws with the slice's own label shares
