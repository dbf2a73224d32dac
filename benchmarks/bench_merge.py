"""Merge speed: finharness's LoRA-space path against the full-model MergeKit merge.

Four single-task LoRA runs of the embedded instruct model (trained here once, a few
steps each: merge cost does not depend on how well they are trained) are merged back into
the vanilla model with the same recipe three ways, each in its own process:

- ``mergekit-adapters``: MergeKit's own way to merge LoRA adapters: the YAML names each
  model as ``base+adapter``, and ``run_merge`` first writes each fine-tuned model in full
  (PEFT ``merge_and_unload`` into ``lora_merge_cache``), then merges them;
- ``mergekit-full``: ``run_merge`` on full fine-tuned checkpoints already on disk (a
  finharness run folder holds one), i.e. ``mergekit-yaml`` on the YAML finharness writes;
- ``lora-space``: finharness's path (base + adapters, MergeKit's merge tasks in its order).

Reported: wall time of the merge call (each writes a full checkpoint), peak RSS of the
process, and the max abs difference of the LoRA-space checkpoint from each MergeKit one.
For DARE, MergeKit's two routes disagree with each other under the same ``random_seed``:
in the adapter route PEFT initialises each LoRA layer (drawing from the global torch RNG)
after the seed is set, so the drop masks differ. The full-checkpoint route is the
reference the LoRA-space path must match exactly.

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
    })) for task in TASKS]


def recipe(method: str, runs: list[Path], out: Path) -> dict:
    density = {"density": 0.5} if method != "task_arithmetic" else {}
    return {"name": method, "base_model": MODEL, "method": method, "seed": 0, "output_dir": str(out), "fast_path": "on",
            "models": [{"model": str(r), "weight": 0.25, **density} for r in runs]}


def one(route: str, method: str, out: Path) -> dict:
    from merges.lora_space import merge_in_lora_space
    from merges.recipe import parse_merge_recipe
    from merges.run import plan, run_mergekit

    runs = [CACHE / t for t in TASKS]
    [item] = plan(parse_merge_recipe(recipe(method, runs, out)))
    assert item.fast_refusal is None, item.fast_refusal
    start = time.perf_counter()
    if route == "mergekit-adapters":
        merge_adapters_with_mergekit(item, out)
    elif route == "mergekit-full":
        run_mergekit(item.config, item.yaml_text, out / route, item.point.seed)
    else:
        merge_in_lora_space(item.config, item.point, item.paths, out / route)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def merge_adapters_with_mergekit(item, out: Path) -> None:
    """The same YAML with ``base+adapter`` model references, as a MergeKit user writes it."""
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    data = yaml.safe_load(item.yaml_text)
    for model in data["models"]:
        model["model"] = f"{data['base_model']}+{Path(model['model']) / 'adapter'}"
    text = yaml.safe_dump(data, sort_keys=False)
    options = MergeOptions(random_seed=item.point.seed, copy_tokenizer=True, quiet=True, lazy_unpickle=False,
                           trust_remote_code=False, safe_serialization=True,
                           lora_merge_cache=str(out / "lora-merge-cache"))
    run_merge(MergeConfiguration.model_validate(data), str(out / "mergekit-adapters"), options=options,
              config_source=text)


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
    routes = ("mergekit-adapters", "mergekit-full", "lora-space")
    print(f"{'method':16s} " + " ".join(f"{r + ' s':>19s}" for r in routes)
          + f" {'speed-up (adapters)':>20s} {'speed-up (full)':>16s} "
          + " ".join(f"{'RSS ' + r:>22s}" for r in routes) + f" {'|diff| full':>11s} {'|diff| adapters':>15s}")
    for method in args.methods.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            result = {}
            for route in routes:
                proc = subprocess.run([sys.executable, __file__, "--one", route, method, tmp],
                                      capture_output=True, text=True)
                line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
                if line is None:
                    raise SystemExit(f"{route} {method} failed:\n{proc.stderr[-3000:]}")
                result[route] = json.loads(line[7:])
            diff = {r: max_abs_diff(Path(tmp) / r, Path(tmp) / "lora-space") for r in routes[:2]}
        fast = result["lora-space"]
        row = {"method": method, **{r.replace("-", "_"): result[r] for r in routes},
               "speedup_vs_adapters": result["mergekit-adapters"]["seconds"] / fast["seconds"],
               "speedup_vs_full": result["mergekit-full"]["seconds"] / fast["seconds"],
               "max_abs_diff_vs_full": diff["mergekit-full"], "max_abs_diff_vs_adapters": diff["mergekit-adapters"]}
        rows.append(row)
        print(f"{method:16s} " + " ".join(f"{result[r]['seconds']:19.1f}" for r in routes)
              + f" {row['speedup_vs_adapters']:19.1f}x {row['speedup_vs_full']:15.1f}x "
              + " ".join(f"{result[r]['peak_rss_mb']:20.0f}MB" for r in routes)
              + f" {diff['mergekit-full']:11.2e} {diff['mergekit-adapters']:15.2e}", flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"model": MODEL, "adapters": TASKS, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
