"""The home of merge methods MergeKit does not ship (docs/architecture.md, "Adding a merge
method MergeKit lacks").

A method here is written with MergeKit's own ``easy_define.merge_method`` (a function of a
``TensorGroup`` and its parameters, returning the merged tensor; see MergeKit's
``merge_methods/nearswap.py``), so ``run_merge`` runs it like a built-in, MergeKit's
registry describes it (base model, inputs, parameters), and ``merges/methods.py`` reads it
from there like any other. Adding one is: the function here, appended to :data:`EXTRA`, and
its row in ``merges/methods.py`` ``POLICY``. Every method the shipped recipes use is
MergeKit's own, so :data:`EXTRA` is empty.
"""
from __future__ import annotations

from typing import Any

EXTRA: list[Any] = []  # mergekit.merge_methods.base.MergeMethod objects made with easy_define.merge_method


def register_extra_methods() -> None:
    """Put :data:`EXTRA` in MergeKit's registry (once each; MergeKit refuses a name twice)."""
    from mergekit.merge_methods import registry

    known = {method.spec.name for method in registry.registered_methods()}
    for method in EXTRA:
        if method.spec.name not in known:
            registry.register(method)
