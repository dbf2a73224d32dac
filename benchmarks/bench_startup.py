"""How long a user waits before the first document is scored: `finharness eval` against plain `lm_eval`.

Both score the same packaged tasks (default: FPB and FiQA-SA, 40 documents each, the
embedded SmolLM2-135M-Instruct already converted, no request cache, float32, batch 8), each in
a fresh process started from the shell, as a user runs them:

- ``finharness eval -m smollm2-135m-instruct -t TASKS --limit N --no_cache``;
- ``lm_eval --model hf --model_args pretrained=<converted folder> --include_path fin_tasks/tasks
  --tasks TASKS --limit N`` (the plain lm-eval way; its ``--limit`` takes the first N).

A small wrapper marks the moment each backend's log-likelihood scoring is first called
(``SharedPrefixLM._loglikelihood_tokens`` / ``HFLM._loglikelihood_tokens``): everything before
it (interpreter, imports, task index, data, model load) is start-up. Reported per command,
the median of ``--repeats`` runs: time to the first document and the whole wall time.

    python benchmarks/bench_startup.py [--tasks fin_fpb,fin_fiqa_sa] [--limit 40] [--repeats 3] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"
MARK = "FIRST-DOCUMENT-AT"
# Runs the given console entry point after wrapping its backend's scoring method with a marker.
WRAPPER = """
import importlib, sys, time
module, cls, entry = sys.argv[1:4]
sys.argv = [entry.split(":")[0].rsplit(".", 1)[-1], *sys.argv[4:]]
klass = getattr(importlib.import_module(module), cls)
original = klass._loglikelihood_tokens
def marked(self, *args, **kwargs):
    if not getattr(marked, "seen", False):
        marked.seen = True
        print("{mark}", time.time(), file=sys.stderr, flush=True)
    return original(self, *args, **kwargs)
klass._loglikelihood_tokens = marked
target, name = entry.split(":")
sys.exit(getattr(importlib.import_module(target), name)())
""".replace("{mark}", MARK)

COMMANDS = {
    "finharness eval": ("harness.backend.shared_prefix_lm", "SharedPrefixLM", "finharness.main:main"),
    "lm_eval (hf)": ("lm_eval.models.huggingface", "HFLM", "lm_eval.__main__:cli_evaluate"),
}


def one_run(name: str, args: list[str], scratch: Path) -> dict:
    module, cls, entry = COMMANDS[name]
    env = {**os.environ, "FINHARNESS_LM_CACHE": str(scratch / "cache"), "PYTHONPATH": str(REPO)}
    start = time.time()
    wrapper = scratch / "marked_entry.py"
    wrapper.write_text(WRAPPER)
    done = subprocess.run([sys.executable, str(wrapper), module, cls, entry, *args], cwd=scratch, env=env,
                          capture_output=True, text=True)
    wall = time.time() - start
    if done.returncode != 0 or MARK not in done.stderr:
        raise SystemExit(f"{name} failed or scored nothing:\n{done.stderr[-3000:]}")
    first = float(re.search(rf"{MARK} ([0-9.]+)", done.stderr).group(1))  # a progress bar may share its line
    return {"to_first_document_s": first - start, "wall_s": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="fin_fpb,fin_fiqa_sa")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from plumbing.checkpoints import resolve_checkpoint

    folder = resolve_checkpoint(MODEL)  # converted once, before any timing
    argv = {
        "finharness eval": ["eval", "-m", MODEL, "-t", args.tasks, "--limit", str(args.limit), "--no_cache",
                            "--batch_size", "8"],
        "lm_eval (hf)": ["--model", "hf", "--model_args", f"pretrained={folder},dtype=float32",
                         "--include_path", str(REPO / "fin_tasks" / "tasks"), "--tasks", args.tasks,
                         "--limit", str(args.limit), "--batch_size", "8", "--device", "cpu"],
    }
    scratch = Path(tempfile.mkdtemp(prefix="finharness-bench-startup-"))  # outside any git checkout
    figures = {}
    try:
        for repeat in range(args.repeats):
            for name in COMMANDS:  # interleaved, so machine load drifts over both alike
                figures.setdefault(name, []).append(one_run(name, argv[name], scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = {"tasks": args.tasks, "limit": args.limit, "repeats": args.repeats, "cpus": os.cpu_count(),
              "date": time.strftime("%Y-%m-%d"), "commands": {}}
    print(f"{args.tasks}, {args.limit} documents each, median of {args.repeats} fresh processes\n")
    print(f"{'command':18s} {'to first document':>18s} {'whole run':>10s}")
    for name, runs in figures.items():
        first = statistics.median(r["to_first_document_s"] for r in runs)
        wall = statistics.median(r["wall_s"] for r in runs)
        report["commands"][name] = {"to_first_document_s": first, "wall_s": wall, "runs": runs}
        print(f"{name:18s} {first:17.1f}s {wall:9.1f}s")
    mine, plain = (report["commands"][n]["to_first_document_s"] for n in COMMANDS)
    report["start_up_ratio_lm_eval_over_finharness"] = plain / mine
    print(f"\nstart-up: lm_eval {plain:.1f} s / finharness {mine:.1f} s = {plain / mine:.2f}x")
    if args.json:
        from plumbing.atomic import write_atomic

        write_atomic(args.json, json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
