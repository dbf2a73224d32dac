"""The run's whole batch plan, fixed by the seed before the first step.

Planning every optimizer step up front makes resume exact (step ``s`` always sees the
same examples) and lets data-parallel processes take their share without a sampler.
Length grouping sorts each window of ``batch_size * 32`` shuffled examples by length
before cutting batches, so a batch pads to a near-equal length instead of to its
longest outlier; batch order is shuffled again so lengths do not trend over an epoch.
"""
from __future__ import annotations

import math
import random
from typing import Sequence

import torch

from training.encode import IGNORE, Encoded

GROUP_WINDOW = 32  # batches per length-sorting window


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int,
                  group_by_length: bool) -> list[list[int]]:
    rng = random.Random(f"{seed}:epoch:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not group_by_length:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    window = batch_size * GROUP_WINDOW
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: -lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def plan_steps(lengths: Sequence[int], *, batch_size: int, grad_accum: int, epochs: float,
               seed: int, group_by_length: bool, world_size: int = 1) -> list[list[list[int]]]:
    """Optimizer steps, each a list of ``grad_accum * world_size`` micro-batches of indices."""
    per_step = grad_accum * world_size
    per_epoch = math.ceil(len(lengths) / batch_size)
    total_micro = max(per_step, math.ceil(per_epoch * epochs / per_step) * per_step)
    micro: list[list[int]] = []
    epoch = 0
    while len(micro) < total_micro:
        micro += epoch_batches(lengths, batch_size, seed, epoch, group_by_length)
        epoch += 1
    micro = micro[:total_micro]
    return [micro[i:i + per_step] for i in range(0, total_micro, per_step)]


def plan_problem(examples: int, steps: int, spec, world_size: int = 1) -> str | None:
    """Why a planned run would not train, naming the recipe field; None when it would.

    One optimizer step that needs more micro-batches than an epoch holds repeats the data
    inside one step; a run whose only step is the warmup's first is taken at learning rate 0."""
    per_step = spec.grad_accum * world_size
    per_epoch = math.ceil(examples / spec.batch_size)
    if per_step > per_epoch:
        return (f"training.grad_accum {spec.grad_accum}{f' x {world_size} processes' if world_size > 1 else ''} = "
                f"{per_step} micro-batches per optimizer step, but an epoch of {examples} examples holds {per_epoch} "
                f"(batch_size {spec.batch_size}): one step would repeat the data; lower grad_accum or batch_size")
    if steps == 1 and math.ceil(spec.warmup_ratio * steps) >= 1:
        return (f"training.epochs {spec.epochs:g} gives 1 optimizer step, taken at learning rate 0 (the warmup's "
                "first step): the weights would not change; raise epochs or set warmup_ratio: 0")
    return None


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
