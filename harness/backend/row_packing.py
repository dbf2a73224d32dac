"""Log-likelihood requests packed into rows, each row a tree of tokens computed once.

lm-eval's ``hf`` backend runs context + continuation once per request. Here the requests
that share a context become one :class:`PackedRow` (the context and its distinct
continuations), and rows whose contexts go on sharing tokens after their task's head
(FinRED: one sentence asked about several entity pairs) are packed together into one
:class:`TreeRow`: a token tree in which each shared token appears once::

    [sentence][pair 1 ...][label 1 body][label 2 body]...[pair 2 ...][label 1 body]...

Tokens are laid out in depth-first order. Each token's position id is its depth, and
under the 4-D mask a token sees exactly its ancestors and itself, so every log-likelihood
is the one a separate forward pass over that request would give (up to float rounding).
A node's subtree is a contiguous range of the layout, so "``k`` is an ancestor of ``q``"
is ``k <= q < end[k]``.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch

from harness.backend.prefix_cache import MIN_PREFIX, group_by_shared_prefix

Request = tuple[tuple[str, str] | None, list[int], list[int]]
MAX_CONTEXTS_PER_ROW = 8  # keeps a tree row's width (and its mask, width squared) near a plain row's


@dataclass
class PackedRow:
    """One context with the distinct continuations scored against it."""

    context: tuple[int, ...]
    continuations: list[tuple[int, ...]] = field(default_factory=list)
    requests: dict[tuple[int, ...], list[int]] = field(default_factory=lambda: defaultdict(list))

    @property
    def length(self) -> int:
        return len(self.context) + sum(len(c) - 1 for c in self.continuations)

    @property
    def span(self) -> int:
        """Largest true position in the row, plus one."""
        return len(self.context) + max(len(c) for c in self.continuations) - 1


def build_rows(requests: list[Request], max_length: int) -> tuple[list[PackedRow], list[int]]:
    """Group requests by the context ``hf`` would actually feed (after its left truncation).

    Returns the rows and the indices of requests left to ``HFLM`` (continuation longer
    than the window, which ``HFLM`` rejects with its own assertion).
    """
    rows: dict[tuple[int, ...], PackedRow] = {}
    leftover = []
    for index, (_, context, continuation) in enumerate(requests):
        if not continuation or len(continuation) > max_length:
            leftover.append(index)
            continue
        # hf feeds (context + continuation)[-(max_length + 1):][:-1]; the scored context is
        # what is left of that window before the continuation.
        window = (list(context) + list(continuation))[-(max_length + 1):]
        fed_context = tuple(window[: len(window) - len(continuation)])
        if not fed_context:
            leftover.append(index)
            continue
        row = rows.setdefault(fed_context, PackedRow(fed_context))
        cont = tuple(continuation)
        if cont not in row.requests:
            row.continuations.append(cont)
        row.requests[cont].append(index)
    return list(rows.values()), leftover


@dataclass
class TreeRow:
    """Rows whose contexts share a head (already in a key/value cache) and
    possibly more, packed as one token tree: the layout after the head."""

    members: list[PackedRow]
    tokens: list[int]
    positions: list[int]  # each token's depth, counting the head
    end: list[int]  # end (exclusive) of each token's subtree in the layout
    reads: list[tuple[PackedRow, tuple[int, ...], list[int]]]  # (row, continuation, layout indices scoring it)

    @property
    def length(self) -> int:
        return len(self.tokens)

    @property
    def span(self) -> int:
        return max(self.positions) + 1

    @property
    def plain(self) -> bool:
        """One context and one-token continuations only: causal attention is the tree mask."""
        return len(self.members) == 1 and all(len(c) == 1 for c in self.members[0].continuations)

    @property
    def first_context(self) -> tuple[int, ...]:
        return self.members[0].context


def tree_row(members: list[PackedRow], head: int) -> TreeRow:
    """Pack ``members`` (contexts that all start with the same ``head`` tokens) into one tree."""
    children: list[dict[int, int]] = [{}]  # node 0: the head (virtual root)
    token_of, depth_of = [-1], [head - 1]

    def insert(parent: int, seq) -> list[int]:
        nodes = []
        for token in seq:
            node = children[parent].get(token)
            if node is None:
                node = children[parent][token] = len(token_of)
                children.append({})
                token_of.append(token)
                depth_of.append(depth_of[parent] + 1)
            nodes.append(node)
            parent = node
        return nodes

    reads_by_node = []
    for row in members:
        context_nodes = insert(0, row.context[head:])
        last = context_nodes[-1]
        for cont in row.continuations:
            reads_by_node.append((row, cont, [last, *insert(last, cont[:-1])]))
    # Depth-first layout: children in insertion order, so a chain keeps its token order.
    index_of, ends, order = {}, {}, []
    stack = [(child, False) for child in reversed(list(children[0].values()))]
    while stack:
        node, closing = stack.pop()
        if closing:
            ends[node] = len(order)
            continue
        index_of[node] = len(order)
        order.append(node)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(children[node].values())))
    return TreeRow(
        members=members, tokens=[token_of[n] for n in order], positions=[depth_of[n] for n in order],
        end=[ends[n] for n in order],
        reads=[(row, cont, [index_of[n] for n in nodes]) for row, cont, nodes in reads_by_node],
    )


def tree_rows(rows: list[PackedRow], head: int) -> list[TreeRow]:
    """Rows of one head group packed into trees: contexts that share at least
    ``MIN_PREFIX`` tokens after the head go together (a few per tree), the rest alone."""
    rests = [r.context[head:] for r in rows]
    packed = []
    for group in group_by_shared_prefix(rests, caps=[len(rest) - 1 for rest in rests]):
        members = sorted((rows[i] for i in group.members), key=lambda r: r.context)
        if group.prefix_len < MIN_PREFIX:
            packed += [tree_row([m], head) for m in members]
            continue
        for start in range(0, len(members), MAX_CONTEXTS_PER_ROW):
            packed.append(tree_row(members[start: start + MAX_CONTEXTS_PER_ROW], head))
    return packed


def pack_batch(
    rows: list[TreeRow], pad_id: int, dtype: torch.dtype, sliding_window: int | None, mask_kinds: tuple[str, ...],
    head: int = 0,
):
    """Input ids, position ids, the packed width, and one 4-D additive mask per kind asked for.

    Kinds are ``full_attention`` and ``sliding_attention``; none asked, none built. With
    ``head`` > 0 the first ``head`` context tokens of every row are already in a key/value
    cache: rows hold what follows, positions start at ``head``, and every mask has
    ``head`` leading key columns, visible to every query.
    """
    width = max(r.length for r in rows)
    n = len(rows)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    positions = torch.zeros((n, width), dtype=torch.long)
    end = torch.zeros((n, width), dtype=torch.long)
    for b, row in enumerate(rows):
        k = row.length
        input_ids[b, :k] = torch.tensor(row.tokens)
        positions[b, :k] = torch.tensor(row.positions)
        end[b, :k] = torch.tensor(row.end)
        # Pads: positions keep increasing, and each pad sees itself and what precedes it,
        # so no row of the mask is empty; no real token sees a pad.
        positions[b, k:] = torch.arange(head + k, head + width)
        end[b, k:] = width
    if not mask_kinds:
        return input_ids, positions, width, {}
    index = torch.arange(width)
    query, key = index[None, :, None], index[None, None, :]
    visible = (key <= query) & (query < end[:, None, :])  # the key is an ancestor of the query, or itself
    head_positions = torch.arange(head)
    neg = torch.finfo(dtype).min
    masks = {}
    for kind in mask_kinds:
        allowed = visible
        head_allowed = torch.ones((n, width, head), dtype=torch.bool)
        if kind == "sliding_attention":
            allowed = visible & (positions[:, :, None] - positions[:, None, :] < sliding_window)
            head_allowed = positions[:, :, None] - head_positions[None, None, :] < sliding_window
        allowed = torch.cat([head_allowed, allowed], dim=2)
        masks[kind] = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, neg)[:, None]
    return input_ids, positions, width, masks
