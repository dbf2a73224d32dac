"""The project's small vocabularies, each defined once and used by the command line, the
evaluation request, the board's submission schema, the studies and the recipes."""
from __future__ import annotations

from typing import Literal, get_args

# How `--limit` picks documents: a seeded slice keeping the label prior, a seeded random one,
# or lm-eval's own first N.
SliceMethod = Literal["stratified", "random", "first"]
SLICE_METHODS: tuple[str, ...] = get_args(SliceMethod)
DEFAULT_SLICE: SliceMethod = "stratified"

# lm-eval's default seed for its samplers; finharness's --limit slice uses it too.
DEFAULT_SEED = 1234

# Weights' dtype for scoring and merging.
Dtype = Literal["float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = get_args(Dtype)
