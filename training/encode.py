"""Token ids and answer-only labels, split the way lm-eval's HF backend splits them.

``encode_pair`` follows ``lm_eval.api.model.LM._encode_pair`` and ``HFLM.tok_encode``
(trailing context whitespace moves into the continuation; the pair is encoded whole and
cut at the context's length), so the answer tokens trained on are the tokens lm-eval
scores. A test checks it against lm-eval's own function.
"""
from __future__ import annotations

from dataclasses import dataclass

from training.examples import Example

IGNORE = -100  # label of a token that carries no loss (PyTorch's cross-entropy default)


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt tokens, the token id on answer tokens
    truncated: bool

    @property
    def answer_tokens(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


def _prefix_token_id(tokenizer) -> int | None:
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def tok_encode(tokenizer, text: str) -> list[int]:
    kwargs = {}
    prefix = _prefix_token_id(tokenizer)
    if prefix is not None and text.startswith(tokenizer.decode(prefix)):
        kwargs["add_special_tokens"] = False  # the chat template already wrote the BOS
    return tokenizer.encode(text, **kwargs)


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok_encode(tokenizer, context + continuation)
    context_ids = tok_encode(tokenizer, context)
    return context_ids, whole[len(context_ids):]


def encode_example(tokenizer, example: Example, max_length: int) -> Encoded | None:
    """None when the answer alone does not fit; long prompts lose their start (as in lm-eval)."""
    context, answer = encode_pair(tokenizer, example.prompt, example.completion)
    if not answer or len(answer) >= max_length:
        return None
    keep = max_length - len(answer)
    truncated = len(context) > keep
    context = context[-keep:]
    return Encoded(context + answer, [IGNORE] * len(context) + answer, truncated)
