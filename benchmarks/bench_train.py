"""Training throughput: ``finharness train`` against plain TRL ``SFTTrainer`` + PEFT.

Both train the same LoRA (same rank, alpha, dropout, all-linear targets) on the same
prompt-completion examples (rendered once by finharness from the task YAMLs), with the
same batch size, learning rate, schedule, epochs and seed, on the embedded instruct model
(LoRA dropout 0 so that the two trainers' different random streams do not matter).
TRL runs with its defaults except the two the training issue turns off on CPU
(``bf16``, ``gradient_checkpointing``), which would otherwise make TRL slower still.
Each trainer runs in its own process so peak memory (max RSS) is its own.

    pip install -e ".[bench]"   # TRL, the baseline this benchmark compares against
    python benchmarks/bench_train.py [--samples 48] [--json benchmarks/results/train_2cpu.json]

    # CPU bf16 autocast against fp32, finharness only: fp32 at two seeds (the seed noise of
    # the loss curve: batch order), bf16 at the first; adopted for studies only if its
    # curve stays within seed noise of fp32's and its tokens/s is >= 1.5x.
    python benchmarks/bench_train.py --precision --samples 128 [--json benchmarks/results/train_bf16_2cpu.json]

Figures: training tokens per second (non-padding tokens of the dataset x epochs, over the
wall time of the training loop alone), peak RSS, and the loss per optimizer step.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = "smollm2-135m-instruct"
TASKS = ["fin_fpb", "fin_fomc", "fin_headlines", "fin_finred"]
RUNS = ("trl", "trl-matched", "finharness")


def recipe(samples: int, out: Path, seed: int = 42, precision: str = "fp32") -> dict:
    per_task = max(1, samples // len(TASKS))
    return {
        "name": "bench", "base_model": MODEL, "prompt_format": "instruct", "seed": seed,
        "tasks": [{"name": t, "samples": per_task} for t in TASKS],
        "lora": {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
        "training": {"lr": 2e-4, "epochs": 1, "batch_size": 8, "grad_accum": 1, "warmup_ratio": 0.03,
                     "max_length": 512, "logging_steps": 1, "save_steps": 10_000, "precision": precision,
                     "scheduler": "linear"},
        "output_dir": str(out),
    }


def run_finharness(samples: int, seed: int = 42, precision: str = "fp32") -> dict:
    from plumbing.folders import read_manifest
    from training.recipe import parse_recipe
    from training.run import train_recipe

    with tempfile.TemporaryDirectory() as tmp:
        folder = train_recipe(parse_recipe(recipe(samples, Path(tmp), seed, precision)))
        run = read_manifest(folder, "training_run").data
        log = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
    tokens = sum(r["tokens"] for r in log)
    return {"trainer": f"finharness-{precision}-s{seed}" if precision != "fp32" or seed != 42 else "finharness",
            "precision": run["precision"], "seed": seed, "seconds": run["seconds"], "tokens": tokens,
            "tokens_per_second": tokens / run["seconds"], "losses": [r["loss"] for r in log],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_trl(samples: int, matched: bool) -> dict:
    """TRL SFTTrainer + PEFT. ``matched``: fed finharness's token ids and batch order.

    The matched run isolates the loop: same tokens, same batches (so the per-step losses
    are comparable), TRL's trainer doing the work. Unmatched is TRL as a user runs it:
    its own tokenization of the prompt-completion pairs and its own shuffled batches.
    """
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from plumbing.checkpoints import resolve_checkpoint
    from training.batching import plan_steps
    from training.encode import IGNORE, encode_example
    from training.examples import build_examples
    from training.recipe import parse_recipe

    spec = parse_recipe(recipe(samples, Path("/unused")))
    t = spec.training
    checkpoint = resolve_checkpoint(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    examples = build_examples(spec, tokenizer)
    batches = None
    if matched:
        encoded = [e for e in (encode_example(tokenizer, ex, t.max_length) for ex in examples) if e]
        data = Dataset.from_list([{"input_ids": e.input_ids, "completion_mask": [int(x != IGNORE) for x in e.labels]}
                                  for e in encoded])
        plan = plan_steps([len(e.input_ids) for e in encoded], batch_size=t.batch_size, grad_accum=t.grad_accum,
                          epochs=t.epochs, seed=spec.seed, group_by_length=t.group_by_length)
        batches = [batch for step in plan for batch in step]
    else:
        data = Dataset.from_list([{"prompt": e.prompt, "completion": e.completion} for e in examples])
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    losses: list[float] = []

    class Losses(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    class PlannedOrder(SFTTrainer):
        def get_train_dataloader(self):
            loader = DataLoader(self.train_dataset, batch_sampler=batches, collate_fn=self.data_collator)
            return self.accelerator.prepare(loader)

    with tempfile.TemporaryDirectory() as tmp:
        config = SFTConfig(
            output_dir=tmp, per_device_train_batch_size=t.batch_size, gradient_accumulation_steps=t.grad_accum,
            num_train_epochs=t.epochs, learning_rate=t.lr, lr_scheduler_type=t.scheduler,
            warmup_steps=t.warmup_ratio, max_length=t.max_length, max_grad_norm=t.max_grad_norm, seed=spec.seed,
            logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
            bf16=False, gradient_checkpointing=False,  # the two CPU switches the issue names
            completion_only_loss=True if matched else None,  # None: TRL infers it from prompt/completion
        )
        lora = LoraConfig(r=spec.lora.r, lora_alpha=spec.lora.alpha, lora_dropout=spec.lora.dropout,
                          target_modules="all-linear", task_type="CAUSAL_LM")
        cls = PlannedOrder if matched else SFTTrainer
        trainer = cls(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                      peft_config=lora, callbacks=[Losses()])
        tokens = int(sum(len(ids) for ids in trainer.train_dataset["input_ids"]) * t.epochs)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return {"trainer": "trl-matched" if matched else "trl", "seconds": seconds, "tokens": tokens,
            "tokens_per_second": tokens / seconds, "losses": losses,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_one(which: str, samples: int, seed: int = 42, precision: str = "fp32") -> dict:
    """One trainer in its own process (its own peak memory, no shared threads)."""
    proc = subprocess.run([sys.executable, __file__, "--samples", str(samples), "--one", which,
                           "--one-seed", str(seed), "--one-precision", precision],
                          capture_output=True, text=True, env=os.environ)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"{which} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def compare_precision(samples: int, out: Path | None) -> None:
    """bf16 autocast against fp32 on the same recipe: tokens/s, and the per-step loss gap set
    beside the gap between two fp32 seeds (what the studies' seeds vary)."""
    import numpy as np

    fp32, other_seed, bf16 = (run_one("finharness", samples, 42, "fp32"), run_one("finharness", samples, 1, "fp32"),
                              run_one("finharness", samples, 42, "bf16"))
    print(f"{'run':22s} {'tokens':>7s} {'seconds':>8s} {'tok/s':>7s}  loss per step")
    for r in (fp32, other_seed, bf16):
        print(f"{r['trainer']:22s} {r['tokens']:7d} {r['seconds']:8.1f} {r['tokens_per_second']:7.1f}  "
              + " ".join(f"{x:.3f}" for x in r["losses"]))
    gap_bf16 = float(np.mean(np.abs(np.subtract(bf16["losses"], fp32["losses"]))))
    gap_seed = float(np.mean(np.abs(np.subtract(other_seed["losses"], fp32["losses"]))))
    speed = bf16["tokens_per_second"] / fp32["tokens_per_second"]
    within = gap_bf16 <= gap_seed
    adopt = within and speed >= 1.5
    print(f"\nbf16 / fp32 tokens/s: {speed:.2f}x")
    print(f"mean per-step loss gap: bf16 vs fp32 (same seed) {gap_bf16:.4f}; fp32 seed 1 vs seed 42 {gap_seed:.4f} "
          f"({'within' if within else 'outside'} seed noise)")
    print(f"verdict: {'adopt bf16 for CPU studies' if adopt else 'keep fp32 on CPU'} "
          f"(rule: loss within seed noise and >= 1.5x tokens/s)")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"samples": samples, "model": MODEL, "threads": os.cpu_count(),
                                   "speedup_bf16": speed, "loss_gap_bf16": gap_bf16, "loss_gap_seed": gap_seed,
                                   "adopt": adopt, "runs": [fp32, other_seed, bf16]}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=48, help="training examples (split over 4 tasks)")
    parser.add_argument("--one", choices=RUNS, help=argparse.SUPPRESS)
    parser.add_argument("--one-seed", type=int, default=42, help=argparse.SUPPRESS)
    parser.add_argument("--one-precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--precision", action="store_true",
                        help="compare finharness's bf16 autocast with fp32 (and fp32's seed noise) instead of TRL")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.one:
        out = (run_finharness(args.samples, args.one_seed, args.one_precision) if args.one == "finharness"
               else run_trl(args.samples, args.one == "trl-matched"))
        print("RESULT " + json.dumps(out))
        return
    if args.precision:
        compare_precision(args.samples, args.json)
        return
    rows = {which: run_one(which, args.samples) for which in RUNS}
    trl, matched, ours = rows["trl"], rows["trl-matched"], rows["finharness"]
    print(f"{'trainer':12s} {'tokens':>7s} {'seconds':>8s} {'tok/s':>7s} {'peak RSS MB':>12s}  loss per step")
    for r in (trl, matched, ours):
        curve = " ".join(f"{x:.3f}" for x in r["losses"])
        print(f"{r['trainer']:12s} {r['tokens']:7d} {r['seconds']:8.1f} {r['tokens_per_second']:7.1f} "
              f"{r['peak_rss_mb']:12.0f}  {curve}")
    ratio = ours["tokens_per_second"] / trl["tokens_per_second"]
    ratio_matched = ours["tokens_per_second"] / matched["tokens_per_second"]
    gap = max(abs(a - b) for a, b in zip(matched["losses"], ours["losses"]))
    print(
        f"\nspeed-up vs TRL as users run it: {ratio:.2f}x tokens/s; "
        f"peak memory {ours['peak_rss_mb'] / trl['peak_rss_mb']:.2f}x"
    )
    print(f"speed-up vs TRL on finharness's batches: {ratio_matched:.2f}x; max per-step loss gap there: {gap:.4f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "samples": args.samples,
                    "model": MODEL,
                    "threads": os.cpu_count(),
                    "speedup": ratio,
                    "speedup_matched": ratio_matched,
                    "max_loss_gap_matched": gap,
                    "runs": rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
