"""Hugging Face model cards for what finharness writes (training runs, adapters, merges).

Cards are built with ``huggingface_hub``'s ``ModelCard`` / ``ModelCardData``, so their
metadata is what the Hub validates: ``base_model`` as a Hub id where one is known (an
embedded model's upstream checkpoint, or an ``org/name`` given as such; a local folder is
named in the text only), ``library_name``, ``tags``, ``base_model_relation``, and a
``model-index`` once the checkpoint has been scored (``eval_results``).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_base_model(model: str | None) -> str | None:
    """The Hub id a base model is known by: an embedded model's upstream checkpoint, or
    ``org/name[@revision]`` without the revision; None for a local folder."""
    if not model:
        return None
    from plumbing.checkpoints import EMBEDDED

    if model in EMBEDDED:
        return EMBEDDED[model].hf_id
    name = model.split("@", 1)[0]
    if HUB_ID.match(name) and not Path(model).exists():
        return name
    return None


def card_text(body: str, *, base_model: str | Sequence[str] | None, library_name: str, tags: Sequence[str],
              base_model_relation: str | None = None, model_name: str | None = None,
              eval_results: Sequence[Any] | None = None, extra: dict[str, Any] | None = None) -> str:
    """A model card (YAML metadata + markdown body) that ``ModelCard`` parses back."""
    from huggingface_hub import ModelCard, ModelCardData

    ids = [b for b in ([base_model] if isinstance(base_model, str) else base_model or []) if b]
    data = ModelCardData(
        base_model=(ids[0] if len(ids) == 1 else ids) or None, library_name=library_name, tags=list(tags),
        base_model_relation=base_model_relation if ids else None,
        model_name=model_name if eval_results else None, eval_results=list(eval_results) if eval_results else None,
        **(extra or {}))
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{body.lstrip()}")
    return str(card)


def with_eval_results(card_path: Path, model_name: str, eval_results: Sequence[Any]) -> str:
    """The card at ``card_path`` with its ``model-index`` replaced by ``eval_results``."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(card_path)
    card.data.model_name = model_name
    card.data.eval_results = list(eval_results)
    return str(ModelCard(f"---\n{card.data.to_yaml()}\n---\n{card.text.lstrip()}"))
