"""The training loop: a thin loop on ``accelerate`` around a PEFT model (or a whole model).

Why not ``trl.SFTTrainer``: the same prompt-completion loss costs less here, which the
benchmark (``benchmarks/bench_train.py``) measures against it. The output layer runs only
on answer positions (the loss needs nothing else; with a 49k vocabulary it is a fifth of
the model's work per token), batches are grouped by length, bf16 autocast is used on GPUs
that have it, and no per-step metrics (entropy, token accuracy) are computed over
the full vocabulary. The loss is the same: summed token cross-entropy over the answer
tokens of an optimizer step, divided by their count.
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from plumbing.logs import log
from training.batching import collate
from training.encode import IGNORE, Encoded
from training.model_setup import language_model
from training.recipe import TrainingSpec

CHECKPOINTS = "checkpoints"


class AnswerLoss(torch.nn.Module):
    """Summed cross-entropy over answer tokens; logits only where a label exists."""

    def __init__(self, model):
        super().__init__()
        self.model = model  # a PEFT model, or a transformers model for a full fine-tune

    def forward(self, input_ids, attention_mask, labels):
        lm = language_model(self.model)
        hidden = lm.get_decoder()(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        target = labels[:, 1:]
        keep = target != IGNORE
        logits = lm.get_output_embeddings()(hidden[:, :-1][keep]).float()
        cap = getattr(lm.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return F.cross_entropy(logits, target[keep], reduction="sum")


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): elsewhere torch emulates it, slowly."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_precision(requested: str, device: torch.device) -> str:
    """``bf16`` or ``no`` (accelerate's names).

    ``auto`` is bf16 autocast on GPUs that support it and fp32 on CPU, so a recipe's default
    run is the fp32 one it always was. ``precision: bf16`` is worth asking for on a CPU with
    native bf16: on this project's 2-core AVX512-BF16 machine it trained 2.0x the tokens/s of
    fp32 with a loss curve within seed noise (benchmarks/bench_train.py --precision), and the
    studies use it; on a CPU without it, torch emulates bf16 and it is slower (a warning says so).
    """
    if requested != "auto":
        if requested == "bf16" and device.type == "cpu" and not cpu_has_bf16():
            log.warning("precision: bf16 on a CPU without native bf16 (no avx512_bf16/amx_bf16 flag): "
                        "torch emulates it, expect it to be slower than fp32")
        return "bf16" if requested == "bf16" else "no"
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


@dataclass
class StepLog:
    step: int
    epoch: float
    loss: float
    lr: float
    tokens: int
    answer_tokens: int
    seconds: float


class TrainingDiverged(ValueError):
    """A run whose loss or weights stopped being finite: it is never marked finished."""


def make_optimizer(model, spec: TrainingSpec, total_steps: int):
    from transformers import get_scheduler

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    warmup = math.ceil(spec.warmup_ratio * total_steps)
    name = "constant_with_warmup" if spec.scheduler == "constant" else spec.scheduler
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
    return optimizer, scheduler


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(work_dir: Path, step: int, model, optimizer, scheduler) -> Path:
    """Written to a temp folder and renamed: a kill mid-save leaves the previous one intact."""
    from safetensors.torch import save_file

    root = work_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-step-{step:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    # named_parameters lists a tied weight (embeddings = output layer) once, as safetensors needs.
    save_file({n: t.contiguous() for n, t in trainable_state(model).items()}, tmp / "trainable.safetensors")
    torch.save({
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }, tmp / "state.pt")
    (tmp / "step.json").write_text(json.dumps({"step": step}))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in root.glob("step-*"):  # keep only the newest
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(work_dir: Path) -> Path | None:
    found = sorted(p for p in (work_dir / CHECKPOINTS).glob("step-*") if (p / "step.json").is_file())
    return found[-1] if found else None


def checkpoint_step(folder: Path) -> int:
    return json.loads((folder / "step.json").read_text())["step"]


def load_checkpoint(folder: Path, model, optimizer, scheduler) -> int:
    from safetensors.torch import load_file

    tensors = load_file(folder / "trainable.safetensors")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value)
    state = torch.load(folder / "state.pt", weights_only=True)  # tensors and numbers only
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return checkpoint_step(folder)


def train_loop(
    *, model, encoded: Sequence[Encoded], plan: list[list[list[int]]], spec: TrainingSpec,
    pad_id: int, work_dir: Path, accelerator, resume_from: Path | None = None,
    on_log: Callable[[StepLog], None] = lambda log: None, steps_per_epoch: float = 1.0,
) -> list[StepLog]:
    """Run the planned optimizer steps; return the per-step logs of this process.

    ``model`` is what trains: a PEFT model, or a whole transformers model. A progress bar
    (on a terminal, main process) shows the loss and tokens/s as the steps go."""
    from tqdm.auto import tqdm

    loss_module = AnswerLoss(model)
    optimizer, scheduler = make_optimizer(model, spec, len(plan))
    start = load_checkpoint(resume_from, model, optimizer, scheduler) if resume_from else 0
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)
    loss_module.train()
    rank, world = accelerator.process_index, accelerator.num_processes
    logs: list[StepLog] = []
    window_loss = window_tokens = window_answer = 0
    window_start = time.perf_counter()
    bar = tqdm(total=len(plan), initial=start, desc="training", unit="step", dynamic_ncols=True,
               disable=None if accelerator.is_main_process else True)  # None: off when not a terminal
    bar_tokens, bar_start = 0, time.perf_counter()
    for step in range(start, len(plan)):
        micro = plan[step]
        step_answer = sum(encoded[i].answer_tokens for batch in micro for i in batch)
        mine = micro[rank::world]
        for j, batch in enumerate(mine):
            inputs = {k: v.to(accelerator.device) for k, v in collate([encoded[i] for i in batch], pad_id).items()}
            sync = nullcontext() if j == len(mine) - 1 else accelerator.no_sync(loss_module)
            with sync, accelerator.autocast():
                loss_sum = loss_module(**inputs)
                # DDP averages gradients over processes; scale so the step's mean is exact.
                accelerator.backward(loss_sum * world / step_answer)
            value = loss_sum.item()
            if not math.isfinite(value):
                raise TrainingDiverged(f"optimizer step {step + 1}: the loss is {value} (not finite): the run "
                                       f"diverged at lr {spec.lr:g}; nothing was marked finished (a lower lr, or "
                                       "max_grad_norm, keeps it finite)")
            window_loss += value
            window_tokens += int(inputs["attention_mask"].sum())
            bar_tokens += int(inputs["attention_mask"].sum())
        window_answer += step_answer
        if spec.max_grad_norm:
            accelerator.clip_grad_norm_(loss_module.parameters(), spec.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        bar.update(1)
        if done % spec.logging_steps == 0 or done == len(plan):
            if world > 1:
                # Every process's share summed: the logged loss is the global batch's mean, as one
                # process with the same global batch logs it.
                shares = accelerator.reduce(torch.tensor([window_loss, float(window_tokens)],
                                                         device=accelerator.device), reduction="sum")
                window_loss, window_tokens = float(shares[0]), int(shares[1])
            log = StepLog(done, round(done / steps_per_epoch, 4), window_loss / window_answer,
                          scheduler.get_last_lr()[0], window_tokens, window_answer,
                          time.perf_counter() - window_start)
            logs.append(log)
            on_log(log)
            bar.set_postfix(loss=f"{log.loss:.4f}", tok_s=f"{bar_tokens / (time.perf_counter() - bar_start):.0f}")
            window_loss = window_tokens = window_answer = 0
            window_start = time.perf_counter()
        if done % spec.save_steps == 0 and done < len(plan) and accelerator.is_main_process:
            save_checkpoint(work_dir, done, accelerator.unwrap_model(loss_module).model,
                            optimizer, scheduler)
    bar.close()
    # The last step's update is in no loss: the weights it left must be finite too.
    broken = [n for n, p in accelerator.unwrap_model(loss_module).model.named_parameters()
              if p.requires_grad and not torch.isfinite(p).all()]
    if broken:
        raise TrainingDiverged(f"after optimizer step {len(plan)}: {len(broken)} trained tensor(s) hold non-finite "
                               f"values ({broken[0]}, ...): the run diverged at lr {spec.lr:g}; nothing was marked "
                               "finished")
    return logs
