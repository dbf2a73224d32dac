"""How far a fine-tuned checkpoint moved from the model it started from.

arXiv 2403.09162 argues that FTICL "deviates less from the original model"; these are the
two measures that make the sentence checkable:

- **weight change**: per layer, ``||W_tuned - W_base||_F / ||W_base||_F`` over that layer's
  tensors (``layer 0`` .. ``layer N``, ``embeddings``, ``other`` for norms and the output
  layer), and over the whole model;
- **next-token KL**: ``KL(p_base || p_tuned)`` of the next-token distributions, averaged over
  every token position of held-out text (test documents of the given tasks, with their
  answers, never their training split), in nats per token.

Both read safetensors only; two checkpoints of different shapes are an error naming the tensor.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from plumbing.checkpoints import CheckpointError, refuse_pickles

_LAYER = re.compile(r"\.layers\.(\d+)\.")


@dataclass
class Deviation:
    model: str
    base: str
    relative_weight_change: float  # whole model
    layers: dict[str, float] = field(default_factory=dict)  # per group, relative
    kl: float | None = None  # nats per token, KL(base || tuned) on held-out text
    kl_tokens: int = 0
    kl_texts: int = 0
    kl_tasks: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return asdict(self)


def _tensor_files(folder: Path) -> list[Path]:
    folder = Path(folder)
    refuse_pickles(folder, "checkpoint")
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{folder}: no .safetensors weights (deviation reads full checkpoints)")
    return files


def _group(name: str) -> str:
    match = _LAYER.search(f".{name}")
    if match:
        return f"layer {int(match.group(1))}"
    return "embeddings" if "embed" in name else "other"


def weight_change(base: Path, tuned: Path) -> tuple[float, dict[str, float]]:
    """Relative Frobenius change of the whole model and of each layer group (read tensor by
    tensor, so two models never sit in memory at once)."""
    from safetensors import safe_open

    def index(folder: Path) -> dict[str, Path]:
        out = {}
        for path in _tensor_files(folder):
            with safe_open(path, "pt") as f:
                out.update({k: path for k in f.keys()})
        return out

    base_index, tuned_index = index(base), index(tuned)
    missing = sorted(set(base_index) ^ set(tuned_index))
    # A tied output layer may be stored by one and not the other; anything else is another model.
    missing = [m for m in missing if not m.endswith("lm_head.weight")]
    if missing:
        raise CheckpointError(f"{tuned} and {base} hold different tensors (e.g. {missing[0]!r}): "
                              "not a fine-tune of this base")
    delta_sq: dict[str, float] = {}
    base_sq: dict[str, float] = {}
    for name in sorted(set(base_index) & set(tuned_index)):
        with safe_open(base_index[name], "pt") as fb, safe_open(tuned_index[name], "pt") as ft:
            b, t = fb.get_tensor(name).double(), ft.get_tensor(name).double()
        if b.shape != t.shape:
            raise CheckpointError(f"{tuned}: tensor {name!r} has shape {tuple(t.shape)}, the base {tuple(b.shape)}")
        group = _group(name)
        delta_sq[group] = delta_sq.get(group, 0.0) + float(((t - b) ** 2).sum())
        base_sq[group] = base_sq.get(group, 0.0) + float((b ** 2).sum())
    total = math.sqrt(sum(delta_sq.values())) / max(math.sqrt(sum(base_sq.values())), 1e-30)
    order = sorted(delta_sq, key=lambda g: (not g.startswith("layer"), int(g.split()[1]) if g.startswith("layer") else 0, g))
    return total, {g: math.sqrt(delta_sq[g]) / max(math.sqrt(base_sq[g]), 1e-30) for g in order}


def heldout_texts(tasks: Sequence[str], per_task: int, seed: int = 0,
                  include_paths: Sequence[str | Path] = ()) -> list[str]:
    """``per_task`` seeded test documents of each task, each as its prompt text followed by
    its answer (what the task shows a model, without chat template or examples)."""
    import random

    from fin_tasks import task_manager

    manager = task_manager(include_paths)
    loaded = manager.load(list(tasks))["tasks"]
    texts = []
    for name in tasks:
        task = loaded[name]
        docs = task.test_docs() if task.has_test_docs() else task.validation_docs()
        rows = sorted(random.Random(f"{seed}:deviation:{name}").sample(range(len(docs)), min(per_task, len(docs))))
        for row in rows:
            doc = docs[row]
            target = task.doc_to_target(doc)
            if task.config.doc_to_choice and isinstance(target, int):
                target = task.doc_to_choice(doc)[target]
            texts.append(f"{task.doc_to_text(doc)}{task.config.target_delimiter}{target}")
    return texts


def next_token_kl(base_model, tuned_model, tokenizer, texts: Sequence[str], max_length: int = 512) -> tuple[float, int]:
    """Mean KL(p_base || p_tuned) in nats over every next-token position of ``texts`` (one
    text at a time: a 262k-word vocabulary makes full logits large)."""
    import torch
    import torch.nn.functional as F

    total, tokens = 0.0, 0
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)["input_ids"]
            if ids.shape[1] < 2:
                continue
            p = F.log_softmax(base_model(input_ids=ids).logits[0, :-1].float(), dim=-1)
            q = F.log_softmax(tuned_model(input_ids=ids).logits[0, :-1].float(), dim=-1)
            total += float(F.kl_div(q, p, log_target=True, reduction="sum"))
            tokens += ids.shape[1] - 1
    return (total / tokens if tokens else float("nan")), tokens


def measure(model: str | Path, base: str | Path, tasks: Sequence[str] = (), per_task: int = 16, seed: int = 0,
            include_paths: Sequence[str | Path] = ()) -> Deviation:
    """Both measures for one checkpoint against its base (KL only when ``tasks`` are given)."""
    from plumbing.checkpoints import architecture, resolve_checkpoint

    base_path, model_path = resolve_checkpoint(str(base)), resolve_checkpoint(str(model))
    if architecture(base_path) != architecture(model_path):
        raise CheckpointError(f"{model} is a {architecture(model_path)} model, {base} a {architecture(base_path)} one")
    total, layers = weight_change(base_path, model_path)
    result = Deviation(model=str(model), base=str(base), relative_weight_change=total, layers=layers)
    if tasks:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        texts = heldout_texts(tasks, per_task, seed, include_paths)

        def load(path):
            return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=False,
                                                        use_safetensors=True).eval()

        tokenizer = AutoTokenizer.from_pretrained(base_path, trust_remote_code=False)
        result.kl, result.kl_tokens = next_token_kl(load(base_path), load(model_path), tokenizer, texts)
        result.kl_texts, result.kl_tasks = len(texts), list(tasks)
    return result


def write(result: Deviation, path: Path) -> None:
    from plumbing.atomic import write_atomic

    write_atomic(path, json.dumps(result.as_json(), indent=2) + "\n")


def read(path: Path) -> Deviation | None:
    path = Path(path)
    if not path.is_file():
        return None
    return Deviation(**json.loads(path.read_text()))
