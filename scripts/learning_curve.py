"""Does the embedded instruct model learn each seen task, and from how many examples?

    python scripts/learning_curve.py --out docs/results/learning-curve [--budgets 32 128 512] [--limit 200]

For each seen task family (Headlines, FPB, FOMC, FinRED) and each training budget, one LoRA
run (one seed, one epoch, batch 4, lr 2e-4, r 16; the loss logged every step) is trained with
`finharness train` and scored zero-shot with `finharness eval` on a seeded, prior-keeping
slice of the test split; the vanilla model is scored on the same slice. Per point: the macro
one-vs-rest AUC of the label log-likelihoods with its 95% bootstrap interval
(harness/discrimination.py), MCC, macro-F1 normalized to the best trivial answer (unclipped),
and the wall time of training and scoring. Writes ``curve.json``, ``curve.md`` and
``curve.png``/``curve.svg`` to ``--out``; work folders go under ``studies/learning-curve``.
Each point is skipped when its results exist, so a killed run resumes.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from harness.contamination import read_sample_rows
from harness.discrimination import rows_auc
from harness.result_files import load_results, results_file, samples_file
from harness.stats import percentile_interval
from plumbing.atomic import write_atomic

TASKS = {"headlines": "fin_headlines", "fpb": "fin_fpb", "fomc": "fin_fomc", "finred": "fin_finred"}
MODEL = "smollm2-135m-instruct"
WORK = Path("studies/learning-curve")


def run(command: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as fh:
        subprocess.run(command, stdout=fh, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def scored(folder: Path, task: str) -> dict:
    results = load_results(results_file(folder))
    rows = read_sample_rows(samples_file(folder, task))
    point, reps = rows_auc(rows, task)
    low, high = percentile_interval(reps[np.isfinite(reps)])
    found = results["finharness"]["baselines"][task]
    return {"docs": len(rows), "auc": point, "auc_ci": [low, high], "mcc": results["results"][task]["mcc,none"],
            "acc": results["results"][task]["acc,none"], "f1_macro": results["results"][task]["f1_macro,none"],
            "f1_macro_normalized": found["normalized"]["f1_macro"], "collapsed": found["collapsed"]}


def evaluate(model: str, task: str, out: Path, limit: int) -> tuple[dict, float]:
    seconds = 0.0
    if not any(out.rglob("results_*.json")):
        out.parent.mkdir(parents=True, exist_ok=True)
        seconds = run(["finharness", "eval", "-m", model, "-t", task, "--limit", str(limit), "-o", str(out)],
                      out.parent / f"{out.name}.log")
    return scored(out, task), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budgets", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    args = parser.parse_args()
    points = []
    for family in args.tasks:
        task = TASKS[family]
        found, seconds = evaluate(MODEL, task, WORK / "evals" / f"vanilla-{family}", args.limit)
        points.append({"task": task, "budget": 0, "train_seconds": 0.0, "eval_seconds": seconds, **found})
        print(json.dumps(points[-1]), flush=True)
        for budget in args.budgets:
            name = f"{family}-{budget}"
            run_dir = WORK / "runs" / name
            train_seconds = 0.0
            if not (run_dir / "finharness.json").is_file():
                recipe = {"name": name, "base_model": MODEL, "tasks": [{"name": task, "samples": budget}],
                          "prompt_format": "instruct", "lora": {"r": 16, "alpha": 32, "dropout": 0.05},
                          "training": {"lr": 2.0e-4, "epochs": 1, "batch_size": 4, "warmup_ratio": 0.03,
                                       "max_length": 512, "logging_steps": 1},
                          "seed": 42, "output_dir": str(WORK / "runs")}
                path = WORK / "recipes" / f"{name}.yaml"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(yaml.safe_dump(recipe, sort_keys=False))
                train_seconds = run(["finharness", "train", str(path)], WORK / "recipes" / f"{name}.log")
            manifest = json.loads((run_dir / "finharness.json").read_text())["data"]
            found, seconds = evaluate(str(run_dir), task, WORK / "evals" / name, args.limit)
            points.append({"task": task, "budget": budget, "steps": manifest["steps"],
                           "train_seconds": manifest["seconds"] if not train_seconds else train_seconds,
                           "final_loss": manifest["final_loss"], "eval_seconds": seconds, **found})
            print(json.dumps(points[-1]), flush=True)
            write_outputs(points, args.out, args.limit)


def write_outputs(points: list[dict], out: Path, limit: int) -> None:
    from tabulate import tabulate

    from plumbing.plots import pyplot, save

    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "curve.json", json.dumps(points, indent=1))
    rows = [[p["task"], p["budget"] or "vanilla", p.get("steps", ""), f"{p['auc']:.3f} [{p['auc_ci'][0]:.3f}, "
             f"{p['auc_ci'][1]:.3f}]", f"{p['mcc']:.3f}", f"{p['f1_macro_normalized']:+.3f}", f"{p['acc']:.3f}",
             p["collapsed"] or "", f"{p['train_seconds']:.0f}", f"{p.get('final_loss', float('nan')):.3f}"]
            for p in points]
    table = tabulate(rows, headers=["task", "examples", "steps", "AUC [95% CI]", "MCC", "macro-F1 normalized",
                                    "acc", "collapsed onto", "train s", "final loss"],
                     tablefmt="github", disable_numparse=True)
    write_atomic(out / "curve.md", f"SmolLM2-135M-Instruct, one seed, scored zero-shot on {limit} prior-keeping "
                                   f"test documents per task (vanilla: examples = vanilla).\n\n{table}\n")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for task in dict.fromkeys(p["task"] for p in points):
        mine = sorted((p for p in points if p["task"] == task), key=lambda p: p["budget"])
        x = [max(p["budget"], 8) for p in mine]  # vanilla drawn at 8 on the log axis
        y = [p["auc"] for p in mine]
        err = [[p["auc"] - p["auc_ci"][0] for p in mine], [p["auc_ci"][1] - p["auc"] for p in mine]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=task)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training examples (8 = vanilla)")
    ax.set_ylabel("macro one-vs-rest AUC (95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out / "curve")
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
