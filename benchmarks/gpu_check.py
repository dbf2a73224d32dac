"""The GPU check: every CUDA path finharness has, in at most about 10 minutes on one GPU.

    bash benchmarks/gpu_check.sh            # after ./install.sh (and ./install.sh --vllm for vLLM)

Each step is a finharness command as a user runs it, in its own process, and one JSON of
figures is written (``results/gpu_check.json``, outside git, unless ``--out``):

1. scoring: ``hf-shared-prefix`` and lm-eval's ``hf`` on the embedded instruct model, on the
   suite at 100 documents per task, in float32 and bfloat16: docs/s, and per document the
   largest log-likelihood difference and whether the chosen answer is the same;
2. the ``vllm`` backend on the same slice (where vLLM is installed): docs/s, same answers;
3. a 20-step bf16 LoRA and a 20-step QLoRA (4-bit) run;
4. one Task Arithmetic merge of the two runs.

On a machine without CUDA it runs nothing heavy and says what it skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"
LIMIT = 100


def step(name: str, argv: list[str], figures: dict, timeout: int = 600) -> bool:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "finharness", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    figures[name] = {"ok": done.returncode == 0, "seconds": round(time.perf_counter() - start, 1),
                     "command": "finharness " + " ".join(argv)}
    if done.returncode != 0:
        figures[name]["error"] = done.stderr[-2000:]
    speed = re.search(r"(\d+) docs in ([\d.]+) s \(([\d.]+) docs/s\)", done.stdout)
    if speed:  # finharness eval's own last line
        figures[name].update(docs=int(speed.group(1)), docs_per_second=float(speed.group(3)))
    print(f"{name}: {'ok' if done.returncode == 0 else 'FAILED'} ({figures[name]['seconds']} s)", flush=True)
    return done.returncode == 0


def answers(folder: Path) -> dict[tuple[str, int], list[float]]:
    """(task, doc_id) -> per-label log-likelihoods, from a results folder's per-sample logs."""
    out = {}
    for path in folder.rglob("samples_*.jsonl"):
        task = path.name[len("samples_"):].rsplit("_", 1)[0]
        for line in path.read_text().splitlines():
            row = json.loads(line)
            try:
                out[(task, row["doc_id"])] = [float(r[0]) for r in row["filtered_resps"]]
            except (TypeError, ValueError, IndexError, KeyError):
                continue
    return out


def compare(a: Path, b: Path) -> dict:
    x, y = answers(a), answers(b)
    common = sorted(set(x) & set(y))
    if not common:
        return {"documents": 0}
    diff = max(max(abs(p - q) for p, q in zip(x[k], y[k])) for k in common)
    same = sum(max(range(len(x[k])), key=x[k].__getitem__) == max(range(len(y[k])), key=y[k].__getitem__)
               for k in common)
    return {"documents": len(common), "max_abs_loglik_diff": diff, "same_answer": same / len(common)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu_check.json",
                        help="where the figures go (benchmarks/results/gpu_check.json records them in the repository)")
    parser.add_argument("--limit", type=int, default=LIMIT, help="documents per task for the scoring steps")
    parser.add_argument("--samples", type=int, default=160, help="training examples per run (20 steps of 8)")
    parser.add_argument("--device", default="cuda",
                        help="cuda; or cpu to check this script's own steps at a tiny size (QLoRA is skipped there)")
    args = parser.parse_args()
    import torch

    figures: dict = {"cuda": torch.cuda.is_available(), "device_asked": args.device, "skipped": []}
    if args.device == "cuda" and not torch.cuda.is_available():
        figures["skipped"] = ["every step: no CUDA device (scoring in float32/bfloat16, vLLM, bf16 LoRA, QLoRA, "
                              "merge of the GPU runs)"]
        print("gpu_check: no CUDA device here; skipped every step. Run it on a GPU machine after ./install.sh.")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))
        return
    figures["device"] = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    work = Path(tempfile.mkdtemp(prefix="finharness-gpu-check-"))
    try:
        base = ["eval", "-m", MODEL, "-t", "finharness_all", "--limit", str(args.limit), "--device", args.device,
                "--no_cache"]
        for dtype in ("float32", "bfloat16"):
            for backend in ("hf-shared-prefix", "hf"):
                step(f"eval {backend} {dtype}", [*base, "--backend", backend, "--dtype", dtype,
                                                 "--batch_size", "16", "-o", str(work / f"{backend}-{dtype}")], figures)
            figures[f"parity {dtype}"] = compare(work / f"hf-shared-prefix-{dtype}", work / f"hf-{dtype}")
        if args.device == "cuda" and _importable("vllm"):
            step("eval vllm bfloat16", [*base, "--backend", "vllm", "--dtype", "bfloat16",
                                        "-o", str(work / "vllm-bfloat16")], figures)
            figures["parity vllm"] = compare(work / "vllm-bfloat16", work / "hf-bfloat16")
        else:
            figures["skipped"].append("vllm: not installed (./install.sh --vllm), or no CUDA")
        runs = {}
        for name, lora in (
            ("lora-bf16", {"r": 16, "alpha": 32}),
            ("qlora", {"r": 16, "alpha": 32, "quantize": "4bit"}),
        ):
            if name == "qlora" and args.device != "cuda":
                figures["skipped"].append("qlora: bitsandbytes 4-bit layers need CUDA")
                continue
            recipe = work / f"{name}.yaml"
            recipe.write_text(
                json.dumps(
                    {
                        "name": name,
                        "base_model": MODEL,
                        "prompt_format": "instruct",
                        "output_dir": str(work / "runs"),
                        "tasks": [{"name": "fin_fpb", "samples": args.samples}],
                        "lora": {**lora, "target_modules": "all-linear"},
                        "training": {"lr": 2e-4, "epochs": 1, "batch_size": 8, "precision": "bf16", "logging_steps": 5},
                    }
                )
            )
            if step(f"train {name}", ["train", str(recipe)], figures):
                runs[name] = work / "runs" / name
        if len(runs) >= 2 or (args.device != "cuda" and runs):
            merge = work / "merge.yaml"
            merge.write_text(json.dumps({"name": "ta", "method": "task_arithmetic", "base_model": MODEL,
                                         "models": [{"model": str(p), "weight": 1 / len(runs)} for p in runs.values()],
                                         "output_dir": str(work / "merged")}))
            step("merge task_arithmetic", ["merge", str(merge)], figures)
        else:
            figures["skipped"].append("merge: a training step failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(f"wrote {args.out}")


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
