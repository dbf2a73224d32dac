"""Training seeds, one rule for `finharness train` recipes and study train files alike.

A recipe gives ``seed:`` (one run) or ``seeds:`` (one run per seed), never both; several
seeds name each run ``<name>-s<seed>``, a single one keeps the plain name.
"""
from __future__ import annotations

from collections.abc import Sequence


def check_seeds(seed_given: bool, seeds: Sequence[int] | None) -> None:
    """ValueError for ``seed`` and ``seeds`` together, or a seed listed twice."""
    if seeds is None:
        return
    if seed_given:
        raise ValueError("give seed or seeds, not both")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: a seed is listed twice: {list(seeds)}")


def seeded_name(name: str, seed: int, seeds: Sequence[int]) -> str:
    """The run name for ``seed`` among ``seeds``: a ``-s<seed>`` suffix when there are several."""
    return f"{name}-s{seed}" if len(seeds) > 1 else name
