"""Greedy decoding that refills a finished row with the next prompt (continuous batching).

lm-eval's ``hf`` backend decodes a batch until its longest answer stops: a question that
stops after 5 tokens keeps its row busy for the 60 steps of the summary beside it. Here
each of the batch's rows (slots) holds one prompt at a time; when its answer is done, the
slot takes the next prompt at once, so every step computes answers still being written.

Each row keeps its own positions and cache columns: a key/value cache of ``slots`` rows,
every layer's new keys written at each row's own length, and a 4-D mask that lets a row
see only its own columns. A prompt joins with all its tokens but the last computed on
their own (from its task's head cache, batch of one, no padding), exactly as
:meth:`PrefixKV.cache_for_rows` prepares hf's batches; the last prompt token is its first
decoding step. The answer is the same as in hf's batched ``generate()``: greedy argmax
over float32 logits, a row ends at an end-of-sequence token, or at ``max_new`` tokens,
or as soon as its text holds a stop string (lm-eval cuts the text at the first stop, so
later tokens cannot change the answer).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MethodType

import torch

from harness.backend.prefix_cache import PrefixKV

# Generation settings under which generate()'s greedy step is a plain argmax: any other
# value adds a logits processor, and the caller decodes with hf instead.
PLAIN_GREEDY = {
    "num_beams": (None, 1), "penalty_alpha": (None,), "repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0), "encoder_no_repeat_ngram_size": (None, 0), "bad_words_ids": (None,),
    "min_length": (None, 0), "min_new_tokens": (None, 0), "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,), "suppress_tokens": (None,), "begin_suppress_tokens": (None,),
    "sequence_bias": (None,), "exponential_decay_length_penalty": (None,), "guidance_scale": (None, 1.0),
    "watermarking_config": (None,),
}


def plain_greedy(generation_config) -> bool:
    """True when the model's generation config adds nothing to greedy argmax decoding."""
    return all(getattr(generation_config, name, None) in allowed for name, allowed in PLAIN_GREEDY.items())


@dataclass
class Prompt:
    """One answer to write: the prompt as hf feeds it, and its task's head cache if any."""

    tokens: Sequence[int]
    max_new: int
    head: PrefixKV | None = None


def _write_at_rows(layer, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
    """Each row's new key and value go to that row's own column; attention sees the
    columns up to the longest row's (the mask hides the rest)."""
    slots = torch.arange(key_states.shape[0], device=key_states.device)
    layer.keys[slots, :, layer.write_at] = key_states[:, :, 0]
    layer.values[slots, :, layer.write_at] = value_states[:, :, 0]
    return layer.keys[:, :, : layer.width], layer.values[:, :, : layer.width]


def _prompt_cache(model, prompt: Prompt, device) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """Keys and values of every prompt token but the last, per layer ([heads, tokens, dim]);
    None when there are none (a one-token prompt)."""
    from transformers import DynamicCache

    start = len(prompt.head) if prompt.head is not None else 0
    body = list(prompt.tokens[start:-1])
    if prompt.head is not None:
        cache = prompt.head.cache_for(1)
    elif body:
        cache = DynamicCache(config=model.config)
    else:
        return None
    if body:
        model(input_ids=torch.tensor([body], device=device), past_key_values=cache, use_cache=True, logits_to_keep=1)
    return [(layer.keys[0], layer.values[0]) for layer in cache.layers]


class _Slots:
    """The batch's rows: each holds one prompt at a time, with its own cache columns and length."""

    def __init__(self, model, prompts: Sequence[Prompt], slots: int, device):
        from transformers import DynamicCache

        self.model, self.prompts, self.device, self.count = model, prompts, device, slots
        self.columns = max(len(p.tokens) + p.max_new for p in prompts)
        self.cache = DynamicCache(config=model.config)
        self.allocated = False
        self.row_of: list[int | None] = [None] * slots  # prompt index held by each slot
        self.length = torch.zeros(slots, dtype=torch.long)  # cache columns filled per slot
        self.next_token = torch.zeros(slots, dtype=torch.long)
        self.written: list[list[int]] = [[] for _ in range(slots)]
        # Longest first, as hf batches them.
        self.queue = iter(sorted(range(len(prompts)), key=lambda i: -len(prompts[i].tokens)))

    def allocate(self, like: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Every layer's [slots, kv heads, columns, head dim] keys and values, shaped after
        one prompt's ([kv heads, tokens, head dim] per layer)."""
        for layer, (k, v) in zip(self.cache.layers, like, strict=True):
            layer.lazy_initialization(k[None], v[None])
            layer.keys = k.new_zeros(self.count, k.shape[0], self.columns, k.shape[2])
            layer.values = v.new_zeros(self.count, v.shape[0], self.columns, v.shape[2])
            layer.update = MethodType(_write_at_rows, layer)
        self.allocated = True

    def allocate_from_probe(self) -> None:
        """Shapes from a dry run of one token (every prompt is one token long: no prompt cache)."""
        from transformers import DynamicCache

        probe = DynamicCache(config=self.model.config)
        self.model(input_ids=torch.tensor([[0]], device=self.device), past_key_values=probe, use_cache=True,
                   logits_to_keep=1)
        self.allocate([(layer.keys[0], layer.values[0]) for layer in probe.layers])

    def admit(self, slot: int) -> bool:
        """The next prompt into ``slot``: all its tokens but the last in the slot's cache columns."""
        index = next(self.queue, None)
        self.row_of[slot] = index
        if index is None:
            return False
        prompt = self.prompts[index]
        kv = _prompt_cache(self.model, prompt, self.device)
        n = len(prompt.tokens) - 1
        if kv is not None:
            if not self.allocated:
                self.allocate(kv)
            for layer, (k, v) in zip(self.cache.layers, kv, strict=True):
                layer.keys[slot, :, :n] = k
                layer.values[slot, :, :n] = v
        self.length[slot] = n
        self.next_token[slot] = prompt.tokens[-1]
        self.written[slot] = []
        return True

    def busy(self) -> bool:
        return any(r is not None for r in self.row_of)

    def step(self, dtype: torch.dtype) -> torch.Tensor:
        """One decoding step of every slot (each at its own position, seeing its own columns):
        the argmax token per slot, over float32 logits."""
        width = int(self.length.max()) + 1
        for layer in self.cache.layers:
            layer.write_at, layer.width = self.length.to(self.device), width
        visible = torch.arange(width)[None, :] <= self.length[:, None]
        mask = torch.zeros((self.count, 1, 1, width), dtype=dtype).masked_fill_(
            ~visible[:, None, None, :], torch.finfo(dtype).min)
        logits = self.model(
            input_ids=self.next_token[:, None].to(self.device), position_ids=self.length[:, None].to(self.device),
            attention_mask=mask.to(self.device), past_key_values=self.cache, use_cache=True, logits_to_keep=1,
        ).logits
        return logits[:, -1, :].to(torch.float32).argmax(dim=-1).cpu()


# Autograd off for the whole decode: with it on, every step's cache writes keep the graph
# of all earlier steps alive and memory grows with each document decoded.
@torch.no_grad()
def decode_greedily(
    model,
    prompts: Sequence[Prompt],
    slots: int,
    eos_ids: set[int],
    text_done: Callable[[int, list[int]], bool],
    device,
    on_done: Callable[[int, list[int]], None] | None = None,
) -> list[list[int]]:
    """The greedy answer to every prompt (new tokens only, the end-of-sequence token kept).

    ``text_done(index, tokens)``: whether prompt ``index``'s answer text already holds a
    stop string. Prompts are taken longest first, as hf batches them; ``on_done(index,
    tokens)`` is called as each answer is finished.
    """
    if not prompts:
        return []
    answers: list[list[int] | None] = [None] * len(prompts)
    rows = _Slots(model, prompts, max(1, min(slots, len(prompts))), device)
    dtype = model.dtype if model.dtype.is_floating_point else torch.float32
    for slot in range(rows.count):
        rows.admit(slot)
    if not rows.allocated:
        rows.allocate_from_probe()
    while rows.busy():
        chosen = rows.step(dtype)
        for slot in range(rows.count):
            index = rows.row_of[slot]
            if index is None:
                continue
            token = int(chosen[slot])
            tokens = rows.written[slot]
            tokens.append(token)
            rows.length[slot] += 1
            rows.next_token[slot] = token
            if token in eos_ids or len(tokens) >= prompts[index].max_new or text_done(index, tokens):
                answers[index] = tokens
                if on_done is not None:
                    on_done(index, tokens)
                if not rows.admit(slot):
                    rows.length[slot] = 0  # an idle slot: attends to column 0 only, its output unused
    return answers  # type: ignore[return-value]
