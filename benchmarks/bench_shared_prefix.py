"""Benchmark: the hf-shared-prefix backend against lm-eval's hf backend, side by side.

    python benchmarks/bench_shared_prefix.py [--model smollm2-135m-instruct] [--out FILE]

For each workload (fin_fpb, fin_fomc, fin_finred, the whole seen + unseen suite) each
backend runs in its own subprocess (so peak memory is its own) on the same documents,
with the model's chat template. Printed per run: documents per second, peak resident
memory, where the time goes (startup = imports + task index + data, model load,
request building and tokenization, log-likelihood forward passes), and whether every
metric is identical between the two backends. Also printed: what indexing lm-eval's
built-in tasks costs at startup, which finharness skips.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

WORKLOADS = [  # (name, tasks, docs per task)
    ("fin_fpb", ["fin_fpb"], 100),
    ("fin_fomc", ["fin_fomc"], 100),
    ("fin_finred", ["fin_finred"], 15),
    ("seen+unseen suite", ["finharness_all"], 10),
]


def run_one(backend: str, model: str, tasks: list[str], limit: int) -> dict:
    """One backend on one workload, in this process; returns timings and metrics."""
    t0 = time.perf_counter()
    import lm_eval
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    import harness.shared_prefix_lm  # noqa: F401
    from fin_tasks import TASKS_DIR
    from harness.evaluate import set_offline
    from harness.models import resolve_checkpoint

    set_offline(False)
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    manager.load(tasks)  # data loading counts as startup
    t_startup = time.perf_counter() - t0

    t1 = time.perf_counter()
    lm = get_model(backend)(
        pretrained=str(resolve_checkpoint(model)), device="cpu", dtype="float32", batch_size=8,
    )
    t_model = time.perf_counter() - t1

    spent = {"encode": 0.0, "forward": 0.0}

    def timed(name, fn):
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - start
        return wrapper

    lm._encode_pair = timed("encode", lm._encode_pair)
    lm._loglikelihood_tokens = timed("forward", lm._loglikelihood_tokens)
    t2 = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=tasks, task_manager=manager, limit=limit, apply_chat_template=True,
        bootstrap_iters=0, log_samples=False,
    )
    t_eval = time.perf_counter() - t2
    docs = sum(v["effective"] for v in out["n-samples"].values())
    metrics = {
        task: {k: v for k, v in vals.items() if k.endswith(",none") and isinstance(v, float)}
        for task, vals in out["results"].items()
    }
    return {
        "backend": backend, "docs": docs, "startup_s": t_startup, "model_load_s": t_model,
        "requests_and_tokenize_s": t_eval - spent["forward"], "tokenize_s": spent["encode"],
        "forward_s": spent["forward"], "eval_s": t_eval,
        "docs_per_s": docs / t_eval, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "metrics": metrics,
    }


def index_cost() -> dict:
    from lm_eval.tasks import TaskManager

    from fin_tasks import TASKS_DIR

    start = time.perf_counter()
    full = TaskManager(include_path=str(TASKS_DIR))
    with_builtins = time.perf_counter() - start
    start = time.perf_counter()
    TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    ours = time.perf_counter() - start
    return {"with_builtins_s": with_builtins, "names": len(full.all_tasks), "finharness_only_s": ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--out", type=Path, default=None, help="also write the raw figures as JSON")
    parser.add_argument("--one", nargs=3, metavar=("BACKEND", "TASKS", "LIMIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        backend, tasks, limit = args.one
        print(json.dumps(run_one(backend, args.model, tasks.split(","), int(limit))))
        return

    rows, raw = [], []
    for name, tasks, limit in WORKLOADS:
        runs = {}
        for backend in ("hf", "hf-shared-prefix"):
            proc = subprocess.run(
                [sys.executable, __file__, "--model", args.model, "--one", backend, ",".join(tasks), str(limit)],
                capture_output=True, text=True, check=True,
            )
            runs[backend] = json.loads(proc.stdout.strip().splitlines()[-1])
        base, fast = runs["hf"], runs["hf-shared-prefix"]
        same = base["metrics"] == fast["metrics"]
        for r in (base, fast):
            rows.append([
                name, r["backend"], r["docs"], f"{r['docs_per_s']:.2f}",
                f"{base['eval_s'] / r['eval_s']:.1f}x", f"{r['peak_rss_mb']:.0f}",
                f"{r['startup_s']:.1f}", f"{r['model_load_s']:.1f}", f"{r['requests_and_tokenize_s']:.1f}",
                f"{r['forward_s']:.1f}", "yes" if same else "NO",
            ])
        raw.append({"workload": name, "tasks": tasks, "limit": limit, "runs": runs, "identical_metrics": same})
        print(f"done: {name}", file=sys.stderr)

    print(tabulate(rows, tablefmt="github", headers=[
        "workload", "backend", "docs", "docs/s", "speed-up", "peak RSS MB",
        "startup s", "model load s", "requests+tokenize s", "loglikelihood s", "identical metrics",
    ]))
    cost = index_cost()
    print(f"\nlm-eval task index with its {cost['names']} built-in names: {cost['with_builtins_s']:.1f} s; "
          f"finharness tasks only (include_defaults=False): {cost['finharness_only_s']:.2f} s")
    if args.out:
        args.out.write_text(json.dumps({"runs": raw, "index": cost}, indent=2))


if __name__ == "__main__":
    main()
