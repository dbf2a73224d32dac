"""Scoring on two CPU processes against one, at the same total threads.

The same `finharness eval` (embedded SmolLM2-135M-Instruct, a stratified slice of the
financial suite, no request cache) runs three ways in the same run, each in its own
process tree:

- ``one process``: `finharness eval`, torch on all the cores;
- ``two processes``: `torchrun --nproc_per_node 2 -m finharness eval`, each process on half
  of the cores (``OMP_NUM_THREADS``), with `hf-shared-prefix` splitting the documents;
- ``two processes, lm-eval hf``: the same launch with `--backend hf`, which on CPU does not
  split the documents (each process scores all of them): the plain lm-eval way.

Reported: wall time of the whole command (start-up included, as a user waits for it),
documents per second, the ratio to one process, and how far the per-document label
log-likelihoods are from the one-process run's (largest difference; documents with the same
answer).

    python benchmarks/bench_scale_out.py [--limit 24] [--tasks fin_fpb,fin_headlines] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(folder: Path, tasks: list[str]) -> dict:
    from evidence.result_files import sample_rows, samples_file

    return {(task, row["doc_id"]): [float(r[0][0]) for r in row["resps"]]
            for task in tasks for _, row in sample_rows(samples_file(folder, task))}


def agreement(mine: dict, reference: dict) -> dict:
    """Largest log-likelihood difference from the reference run, and documents with the same answer."""
    assert mine.keys() == reference.keys()
    gap = max(abs(a - b) for key in mine for a, b in zip(mine[key], reference[key]))
    same = sum(max(range(len(v)), key=v.__getitem__) == max(range(len(reference[k])), key=reference[k].__getitem__)
               for k, v in mine.items())
    return {"max_abs_loglikelihood_diff": gap, "same_answer": same, "documents": len(mine)}


def run(name: str, launcher: list[str], threads: int, backend: str, tasks: list[str], limit: int,
        scratch: Path) -> dict:
    out = scratch / name.replace(" ", "-").replace(",", "")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "FINHARNESS_LM_CACHE": str(scratch / "cache")}
    command = [*launcher, "eval", "-m", MODEL, "-t", ",".join(tasks), "--limit", str(limit),
               "--backend", backend, "--no_cache", "-o", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    docs = len(tasks) * limit
    note = next((line for line in done.stdout.splitlines() if "processes" in line), "")
    return {"name": name, "backend": backend, "threads_per_process": threads, "seconds": seconds,
            "docs": docs, "docs_per_s": docs / seconds, "note": note, "folder": str(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=24, help="documents per task")
    parser.add_argument("--tasks", default="fin_fpb,fin_headlines,fin_fomc,fin_finarg_auc")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    cores = os.cpu_count() or 2
    single = [sys.executable, "-m", "finharness"]

    def two() -> list[str]:
        return ["torchrun", "--nproc_per_node", "2", "--master_port", str(free_port()), "-m", "finharness"]

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        runs = [run("one process", single, cores, "hf-shared-prefix", tasks, args.limit, scratch),
                run("two processes", two(), max(1, cores // 2), "hf-shared-prefix", tasks, args.limit, scratch),
                run("two processes, lm-eval hf", two(), max(1, cores // 2), "hf", tasks, args.limit, scratch)]
        reference = answers(Path(runs[0]["folder"]), tasks)
        for r in runs:
            r.update(agreement(answers(Path(r["folder"]), tasks), reference))
            r["ratio_to_one_process"] = r["docs_per_s"] / runs[0]["docs_per_s"]
            del r["folder"]
    for r in runs:
        print(f"{r['name']:28s} {r['seconds']:7.1f} s  {r['docs_per_s']:6.2f} docs/s  "
              f"{r['ratio_to_one_process']:.2f}x  max |dLL| {r['max_abs_loglikelihood_diff']:.1e}  "
              f"same answer {r['same_answer']}/{r['documents']}  {r['note']}")
    if args.json:
        args.json.write_text(json.dumps({"cores": cores, "tasks": tasks, "limit": args.limit, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
