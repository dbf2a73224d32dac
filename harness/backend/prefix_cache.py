"""Cross-document prefix reuse: the prompt head that every document of a task shares, run once.

Every document of a task starts with the same tokens: the chat template's system turn,
the task instruction, fixed few-shot examples. On the financial suite that head is 64%
of all context tokens. :func:`group_by_shared_prefix` finds the groups of sequences
worth serving from one shared head, and :class:`PrefixKV` runs a head once and hands
each batch a key/value cache that starts from it, expanded across the batch as a view.

Grouping is exact, not a guess: sequences are sorted, the longest common prefixes of
neighbours form a tree (each node: a range of sorted sequences and the prefix they all
share), and a small dynamic programme picks the nodes that save the most tokens, where
a group of ``n`` sequences with a ``p``-token head saves ``(n - 1) * p``. So documents
of one task share their task's head even when the suite mixes tasks, and a stray
document (truncated, or from a task of its own) costs nothing but itself.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MethodType

import torch

MIN_PREFIX = 8  # a shorter head is not worth its own forward pass


@dataclass
class PrefixGroup:
    """Sequences (indices into the list given) served from one ``prefix_len``-token head."""

    prefix_len: int
    members: list[int]


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def group_by_shared_prefix(
    seqs: Sequence[Sequence[int]], caps: Sequence[int] | None = None, min_prefix: int = MIN_PREFIX,
) -> list[PrefixGroup]:
    """Partition ``seqs`` into groups that share a head; ``prefix_len`` 0 means "no head".

    ``caps[i]`` is the longest head sequence ``i`` may take (a scorer keeps at least its
    last context token out of the head, for example). Every index appears in exactly one
    group; groups list their members in sorted-sequence order.
    """
    n = len(seqs)
    caps = [len(s) for s in seqs] if caps is None else list(caps)
    order = sorted(range(n), key=lambda i: tuple(seqs[i]))
    # lcp[k]: shared head of sorted neighbours k-1 and k, within both caps.
    lcp = [0] + [
        min(common_prefix_length(seqs[order[k - 1]], seqs[order[k]]), caps[order[k - 1]], caps[order[k]])
        for k in range(1, n)
    ]
    groups: list[PrefixGroup] = []

    def best(a: int, b: int) -> tuple[int, list[tuple[int, int, int]]]:
        """Best saving over sorted range [a, b] and its plan: (start, end, head) triples."""
        # Explicit stack instead of recursion: a chain of nested heads can be deep.
        result: dict[tuple[int, int], tuple[int, list[tuple[int, int, int]]]] = {}
        stack = [(a, b, False)]
        while stack:
            lo, hi, expanded = stack.pop()
            if hi == lo:
                result[(lo, hi)] = (0, [(lo, hi, 0)])
                continue
            depth = min(lcp[lo + 1: hi + 1])
            cuts = [lo] + [k for k in range(lo + 1, hi + 1) if lcp[k] == depth] + [hi + 1]
            children = [(cuts[j], cuts[j + 1] - 1) for j in range(len(cuts) - 1)]
            if len(children) == 1:  # cannot happen (depth is attained), kept for safety
                children = [(lo, lo), (lo + 1, hi)]
            if not expanded:
                stack.append((lo, hi, True))
                stack.extend((c0, c1, False) for c0, c1 in children)
                continue
            split_saving = sum(result[c][0] for c in children)
            split_plan = [p for c in children for p in result[c][1]]
            whole = (hi - lo) * depth if depth >= min_prefix else 0
            result[(lo, hi)] = (whole, [(lo, hi, depth)]) if whole > split_saving else (split_saving, split_plan)
            for c in children:
                del result[c]
        return result[(a, b)]

    if n == 0:
        return groups
    _, plan = best(0, n - 1)
    for lo, hi, head in plan:
        groups.append(PrefixGroup(head if hi > lo else 0, [order[k] for k in range(lo, hi + 1)]))
    return groups


def _attend_without_storing(layer, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
    return torch.cat([layer.keys, key_states], dim=-2), torch.cat([layer.values, value_states], dim=-2)


class PrefixKV:
    """One head's key/value cache, computed once, handed to every batch that starts with it."""

    def __init__(self, model, tokens: Sequence[int], device, keep_logits: bool):
        from transformers import DynamicCache

        self.tokens = tuple(tokens)
        self.config = model.config
        cache = DynamicCache(config=self.config)
        extra = {"logits_to_keep": 1} if keep_logits else {}
        with torch.no_grad():
            model(input_ids=torch.tensor([self.tokens], device=device), past_key_values=cache, use_cache=True, **extra)
        self.layers = [(layer.keys, layer.values) for layer in cache.layers]

    def __len__(self) -> int:
        return len(self.tokens)

    def cache_for(self, batch: int, read_only: bool = False):
        """A fresh cache holding the head for ``batch`` rows: views, not per-row copies.

        ``read_only``: the forward pass attends to the head but the cache keeps nothing of
        what the batch adds, so no layer's keys and values outlive that layer (a scoring
        pass needs no cache afterwards, and holding every layer's would raise peak memory).
        """
        from transformers import DynamicCache

        cache = DynamicCache(config=self.config)
        for layer, (keys, values) in zip(cache.layers, self.layers, strict=True):
            layer.lazy_initialization(keys, values)
            layer.keys = keys.expand(batch, -1, -1, -1)
            layer.values = values.expand(batch, -1, -1, -1)
            if hasattr(layer, "cumulative_length"):  # sliding-window layers count what they saw
                layer.cumulative_length = len(self.tokens)
            if read_only:
                layer.update = MethodType(_attend_without_storing, layer)
        return cache

    def cache_for_rows(
        self, model, rests: Sequence[Sequence[int]], width: int, max_length: int, device, keep_logits: bool,
    ):
        """A cache holding ``width - 1`` slots per row, laid out as ``[head][free slots][rest]``
        minus each row's last token: ready for ``generate()`` to compute only that last token.

        Each row's rest is computed on its own (a batch of one after the head), so no padding
        is ever computed; free slots stay zero and the attention mask hides them. For models
        without sliding-window layers the cache is preallocated to ``max_length`` slots
        (transformers' ``StaticCache``): decoding then writes each new token in place instead
        of copying the whole cache at every step, as the growing cache does.
        """
        from transformers import DynamicCache, StaticCache

        head = len(self.tokens)
        extra = {"logits_to_keep": 1} if keep_logits else {}
        bodies = []
        for rest in rests:
            body = list(rest[:-1])
            if not body:
                bodies.append(None)
                continue
            cache = self.cache_for(1)
            with torch.no_grad():
                model(input_ids=torch.tensor([body], device=device), past_key_values=cache, use_cache=True, **extra)
            bodies.append([(layer.keys[0, :, head:], layer.values[0, :, head:]) for layer in cache.layers])
        out = DynamicCache(config=self.config)
        sliding = any(getattr(layer, "is_sliding", False) for layer in out.layers)
        if not sliding:
            out = StaticCache(config=self.config, max_cache_len=max_length)
        for index, (layer, (keys, values)) in enumerate(zip(out.layers, self.layers, strict=True)):
            rows = len(rests)
            layer.lazy_initialization(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1))
            if sliding:  # a growing cache: width - 1 slots of our own
                layer.keys = keys.new_zeros(rows, keys.shape[1], width - 1, keys.shape[3])
                layer.values = values.new_zeros(rows, values.shape[1], width - 1, values.shape[3])
            k, v = layer.keys, layer.values  # StaticCache: its own zeroed max_length slots, filled in place
            k[:, :, :head], v[:, :, :head] = keys, values
            for b, body in enumerate(bodies):
                if body is not None:
                    n = body[index][0].shape[1]
                    k[b, :, width - 1 - n: width - 1], v[b, :, width - 1 - n: width - 1] = body[index]
            counted = getattr(layer, "cumulative_length", None)
            if isinstance(counted, torch.Tensor):
                counted.fill_(width - 1)
            elif counted is not None:
                layer.cumulative_length = width - 1
        return out
