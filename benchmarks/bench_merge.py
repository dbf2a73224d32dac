"""Merge speed: finharness's LoRA-space path against the full-model MergeKit merge.

Four single-task LoRA runs of the embedded instruct model (trained here once, a few
steps each: merge cost does not depend on how well they are trained) are merged back into
the vanilla model with the same recipe two ways, each in its own process:

- ``mergekit``: MergeKit's ``run_merge`` on the four full fine-tuned checkpoints (the run
  folders), i.e. what ``mergekit-yaml`` does with the YAML finharness writes;
- ``lora-space``: finharness's path (base + adapters, MergeKit's merge tasks in its order).

Reported: wall time of the merge call (both write a full checkpoint), peak RSS of the
process, and the max abs difference between the two merged checkpoints.

    python benchmarks/bench_merge.py [--methods task_arithmetic,ties] [--json FILE]
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
TASKS = ["fin_fpb", "fin_headlines", "fin_finred", "fin_fomc"]
CACHE = Path(os.environ.get("FINHARNESS_HOME", Path.home() / ".cache" / "finharness")) / "bench_merge_runs"


def ensure_runs() -> list[Path]:
    from training.recipe import parse_recipe
    from training.run import train_recipe

    return [train_recipe(parse_recipe({
        "name": task, "base_model": MODEL, "output_dir": str(CACHE), "prompt_format": "instruct",
        "tasks": [{"name": task, "samples": 16}], "lora": {"r": 16, "alpha": 32},
        "training": {"lr": 1e-3, "epochs": 1, "batch_size": 8, "max_length": 512},
    }), quiet=True) for task in TASKS]


def recipe(method: str, runs: list[Path], out: Path) -> dict:
    density = {"density": 0.5} if method != "task_arithmetic" else {}
    return {"name": method, "base_model": MODEL, "method": method, "seed": 0, "output_dir": str(out),
            "models": [{"model": str(r), "weight": 0.25, **density} for r in runs]}


def one(route: str, method: str, out: Path) -> dict:
    from merges.lora_space import merge_in_lora_space
    from merges.recipe import parse_merge_recipe
    from merges.run import plan, run_mergekit

    runs = [CACHE / t for t in TASKS]
    [item] = plan(parse_merge_recipe(recipe(method, runs, out)))
    assert item.fast_refusal is None, item.fast_refusal
    start = time.perf_counter()
    if route == "mergekit":
        run_mergekit(item.config, item.yaml_text, out / route, item.point.seed)
    else:
        merge_in_lora_space(item.config, item.point, item.paths, out / route)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """VmHWM: unlike ru_maxrss it restarts at exec, so the parent's memory is not counted."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def max_abs_diff(a: Path, b: Path) -> float:
    from merges.lora_space import load_state

    x, y = load_state(a), load_state(b)
    if x.keys() != y.keys():
        raise SystemExit(f"different tensors: {sorted(x.keys() ^ y.keys())[:5]}")
    return max((x[k] - y[k]).abs().max().item() for k in x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="task_arithmetic,ties,dare_ties,dare_linear")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        route, method, out = args.one
        print("RESULT " + json.dumps(one(route, method, Path(out))))
        return
    ensure_runs()
    rows = []
    print(f"{'method':16s} {'mergekit s':>10s} {'lora-space s':>12s} {'speed-up':>8s} "
          f"{'RSS mergekit':>12s} {'RSS lora':>9s} {'max |diff|':>10s}")
    for method in args.methods.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            result = {}
            for route in ("mergekit", "lora-space"):
                proc = subprocess.run([sys.executable, __file__, "--one", route, method, tmp],
                                      capture_output=True, text=True)
                line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
                if line is None:
                    raise SystemExit(f"{route} {method} failed:\n{proc.stderr[-3000:]}")
                result[route] = json.loads(line[7:])
            diff = max_abs_diff(Path(tmp) / "mergekit", Path(tmp) / "lora-space")
        full, fast = result["mergekit"], result["lora-space"]
        row = {"method": method, "mergekit": full, "lora_space": fast, "speedup": full["seconds"] / fast["seconds"],
               "max_abs_diff": diff}
        rows.append(row)
        print(f"{method:16s} {full['seconds']:10.1f} {fast['seconds']:12.1f} {row['speedup']:7.1f}x "
              f"{full['peak_rss_mb']:10.0f}MB {fast['peak_rss_mb']:7.0f}MB {diff:10.2e}", flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"model": MODEL, "adapters": TASKS, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
