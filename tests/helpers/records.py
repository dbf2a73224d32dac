"""Checks that what a real evaluation or submission wrote is declared in evidence/records.py."""
from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict


def undeclared(value: Mapping[str, Any], record: type, where: str = "") -> list[str]:
    """Every key of ``value`` (nested records and dicts of records included) its type does not declare."""
    hints = get_type_hints(record)
    found = []
    for key, item in value.items():
        if key not in hints:
            found.append(f"{where}{key}")
        else:
            found += _inside(item, hints[key], f"{where}{key}.")
    return found


def _inside(item: Any, hint: Any, where: str) -> list[str]:
    if is_typeddict(hint):
        return undeclared(item, hint, where) if isinstance(item, Mapping) else []
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return next((found for arg in get_args(hint) if is_typeddict(arg) and isinstance(item, Mapping)
                     for found in [undeclared(item, arg, where)]), [])
    if origin is dict and isinstance(item, Mapping):
        value_type = get_args(hint)[1]
        return [key for k, v in item.items() for key in _inside(v, value_type, f"{where}{k}.")]
    return []
