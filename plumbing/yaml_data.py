"""YAML read as data, whoever wrote it: the safe loader (no tag that builds a Python object),
and no alias bomb.

PyYAML shares an aliased node instead of copying it, so nine levels of nine aliases load in
microseconds, and then a deep copy, a JSON dump or an error message that prints the value
expands them to 9**9 items (issue 48 X6: a task folder; the same holds for a recipe or a
submission file). :func:`load_yaml_data` counts what the document becomes once every alias is
copied out, and refuses it past :data:`MAX_EXPANDED_NODES`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_EXPANDED_NODES = 100_000  # the packaged suite's largest YAML expands to a few hundred


class AliasBomb(ValueError):
    """A YAML whose aliases expand past :data:`MAX_EXPANDED_NODES`."""


def expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes the document becomes with every alias copied out; capped just past the limit."""
    key = id(node)
    if key not in memo:
        memo[key] = 1  # a recursive alias counts once, so the sum stays finite
        if isinstance(node, yaml.SequenceNode):
            memo[key] = 1 + sum(expanded_size(child, memo) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            memo[key] = 1 + sum(expanded_size(k, memo) + expanded_size(v, memo) for k, v in node.value)
        memo[key] = min(memo[key], MAX_EXPANDED_NODES + 1)
    return memo[key]


def load_yaml_data(stream, source: str | Path, loader: type = yaml.SafeLoader) -> Any:
    """One YAML document as data (``loader``: the safe loader or a subclass of it); raises
    ``yaml.YAMLError`` for bad YAML and :class:`AliasBomb` naming ``source``."""
    reader = loader(stream)
    reader.source = Path(source)
    try:
        node = reader.get_single_node()
        if node is None:
            return None
        if expanded_size(node, {}) > MAX_EXPANDED_NODES:
            raise AliasBomb(f"{source}: its YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes "
                            "(an alias bomb?); write the values out")
        return reader.construct_document(node)
    finally:
        reader.dispose()
