"""How far a fine-tuned checkpoint moved from the model it started from.

arXiv 2403.09162 argues that FTICL "deviates less from the original model"; these are the
two measures that make the sentence checkable:

- **weight change**: per layer, ``||W_tuned - W_base||_F / ||W_base||_F`` over that layer's
  tensors (``layer 0`` .. ``layer N``, ``embeddings``, ``other`` for norms and the output
  layer), and over the whole model;
- **answer-token KL**: ``KL(p_base || p_tuned)`` of the next-token distributions at every
  position that predicts a token of a test document's reference answer (teacher forced:
  the prompt and the gold answer are fed, never the model's own output; test split only),
  in nats per answer token, over the vocabulary *without* the end-of-sequence token (both
  distributions renormalized). A model fine-tuned to stop after a one-word label puts its
  mass on EOS wherever a longer answer goes on; counted in the KL, that shift alone would
  read as "deviates a lot". It is reported on its own instead: the mean change of
  p(EOS) inside the answer, and p(EOS) right after it for both models. The KL over the whole
  vocabulary is kept beside it (``kl_with_eos``).

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
ANSWER_SCOPE = "reference-answer tokens, teacher forced, EOS set apart"


@dataclass
class Deviation:
    model: str
    base: str
    relative_weight_change: float  # whole model
    layers: dict[str, float] = field(default_factory=dict)  # per group, relative
    kl: float | None = None  # nats per token, KL(base || tuned); see kl_scope
    kl_tokens: int = 0
    kl_texts: int = 0
    kl_tasks: list[str] = field(default_factory=list)
    # What ``kl`` averages over. Files written before answer-token deviation hold the old scope.
    kl_scope: str = "every token of prompt and answer"
    kl_with_eos: float | None = None  # the answer-token KL over the whole vocabulary
    eos_shift: float | None = None  # mean p_tuned(EOS) - p_base(EOS) over answer positions
    eos_end_base: float | None = None  # p(EOS) right after the answer, the base model
    eos_end_tuned: float | None = None  # the same, the tuned model

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
    order = sorted(
        delta_sq, key=lambda g: (not g.startswith("layer"), int(g.split()[1]) if g.startswith("layer") else 0, g)
    )
    return total, {g: math.sqrt(delta_sq[g]) / max(math.sqrt(base_sq[g]), 1e-30) for g in order}


def heldout_pairs(tasks: Sequence[str], per_task: int, seed: int = 0,
                  include_paths: Sequence[str | Path] = ()) -> list[tuple[str, str]]:
    """``per_task`` seeded test documents of each task as (prompt, reference answer): what the
    task shows a model, and the answer it scores (the gold label's word, or the reference
    text of a generation task), with the task's delimiter in front; no chat template or examples."""
    import random

    from fin_tasks.index import task_manager

    manager = task_manager(include_paths)
    loaded = manager.load(list(tasks))["tasks"]
    pairs = []
    for name in tasks:
        task = loaded[name]
        docs = task.test_docs() if task.has_test_docs() else task.validation_docs()
        rows = sorted(random.Random(f"{seed}:deviation:{name}").sample(range(len(docs)), min(per_task, len(docs))))
        for row in rows:
            doc = docs[row]
            target = task.doc_to_target(doc)
            if task.config.doc_to_choice and isinstance(target, int):
                target = task.doc_to_choice(doc)[target]
            if isinstance(target, list):  # several references: the first
                target = target[0]
            pairs.append((task.doc_to_text(doc), f"{task.config.target_delimiter}{target}"))
    return pairs


@dataclass
class AnswerDeviation:
    """Deviation on teacher-forced reference answers, with the end-of-sequence token apart."""

    kl: float  # nats per answer token: KL(base || tuned) over the vocabulary without EOS, each renormalized
    kl_with_eos: float  # the same over the whole vocabulary
    eos_shift: float  # mean over answer positions of p_tuned(EOS) - p_base(EOS)
    eos_end_base: float  # p_base(EOS) right after the answer, mean over documents
    eos_end_tuned: float  # p_tuned(EOS) there
    tokens: int
    texts: int


def _split(tokenizer, context: str, answer: str) -> tuple[list[int], list[int]]:
    """Context and answer tokens as lm-eval splits them: encode the whole, cut at the context's
    length (a trailing space of the context moves to the answer)."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, answer = context[:-spaces], context[-spaces:] + answer
    whole = tokenizer(context + answer)["input_ids"]
    n = len(tokenizer(context)["input_ids"])
    return whole[:n], whole[n:]


def answer_deviation(base_model, tuned_model, tokenizer, pairs: Sequence[tuple[str, str]],
                     max_length: int = 512) -> AnswerDeviation:
    """KL(p_base || p_tuned) at every position that predicts a reference-answer token (teacher
    forced), over the vocabulary without EOS so that a model that learned to stop early does not
    read as one that answers differently; the EOS probability's shift reported on its own,
    inside the answer and right after it."""
    import torch
    import torch.nn.functional as F

    eos = tokenizer.eos_token_id
    kl = kl_eos = shift = end_base = end_tuned = 0.0
    tokens = texts = 0
    with torch.inference_mode():
        for context, answer in pairs:
            ctx, ans = _split(tokenizer, context, answer)
            if not ans:
                continue
            ids = (ctx + ans)[-max_length:]
            start = len(ids) - len(ans)  # the first answer token's index
            if start < 1:
                continue
            batch = torch.tensor([ids])
            # Positions start-1 .. len-1: each answer token's prediction, then the one after the answer.
            p = base_model(input_ids=batch).logits[0, start - 1:].float()
            q = tuned_model(input_ids=batch).logits[0, start - 1:].float()
            lp, lq = F.log_softmax(p, -1), F.log_softmax(q, -1)
            inside_p, inside_q = lp[:-1], lq[:-1]
            kl_eos += float(F.kl_div(inside_q, inside_p, log_target=True, reduction="sum"))
            if eos is not None:
                keep = torch.ones(p.shape[-1], dtype=torch.bool)
                keep[eos] = False
                rp, rq = F.log_softmax(p[:-1, keep], -1), F.log_softmax(q[:-1, keep], -1)
                kl += float(F.kl_div(rq, rp, log_target=True, reduction="sum"))
                shift += float((inside_q[:, eos].exp() - inside_p[:, eos].exp()).sum())
                end_base += float(lp[-1, eos].exp())
                end_tuned += float(lq[-1, eos].exp())
            tokens += len(ans)
            texts += 1
    if not tokens:
        nan = float("nan")
        return AnswerDeviation(nan, nan, nan, nan, nan, 0, 0)
    if eos is None:  # no end-of-sequence token to set apart
        kl = kl_eos
    return AnswerDeviation(kl / tokens, kl_eos / tokens, shift / tokens, end_base / texts, end_tuned / texts,
                           tokens, texts)


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

        pairs = heldout_pairs(tasks, per_task, seed, include_paths)

        def load(path):
            return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=False,
                                                        use_safetensors=True).eval()

        tokenizer = AutoTokenizer.from_pretrained(base_path, trust_remote_code=False)
        found = answer_deviation(load(base_path), load(model_path), tokenizer, pairs)
        result.kl, result.kl_with_eos, result.kl_tokens, result.kl_texts = (
            found.kl,
            found.kl_with_eos,
            found.tokens,
            found.texts,
        )
        result.eos_shift, result.eos_end_base, result.eos_end_tuned = (
            found.eos_shift,
            found.eos_end_base,
            found.eos_end_tuned,
        )
        result.kl_tasks, result.kl_scope = list(tasks), ANSWER_SCOPE
    return result


def write(result: Deviation, path: Path) -> None:
    from plumbing.atomic import write_atomic

    write_atomic(path, json.dumps(result.as_json(), indent=2) + "\n")


def read(path: Path) -> Deviation | None:
    path = Path(path)
    if not path.is_file():
        return None
    return Deviation(**json.loads(path.read_text()))
