"""Does the embedded instruct model learn each seen task, and from how many examples?

    python scripts/learning_curve.py --out docs/results/learning-curve [--budgets 32 128 512] [--limit 200]
    python scripts/learning_curve.py --setting amazon-base --out docs/results/learning-curve-amazon \
        --budgets 512 --lrs 2e-5 2e-4 2e-3 --limit 200
    python scripts/learning_curve.py --setting xsum-base --out docs/results/learning-curve-xsum \
        --budgets 32 --lrs 2e-5 2e-4 2e-3 --limit 100

For each seen task family (Headlines, FPB, FOMC, FinRED) and each training budget, one LoRA
run (one seed; Study A's LoRA and training blocks from its train.yaml) is trained with
`finharness train` and scored zero-shot with `finharness eval --split development` on a
seeded, prior-keeping slice of each task's validation rows that repeat no test document (the
curve chooses a study's budget, so it never looks at a test document; the shipped
`docs/results/learning-curve/` was made before this, on test slices); the vanilla model is
scored on the same slice. Per point: the macro
one-vs-rest AUC of the label log-likelihoods with its 95% bootstrap interval
(evidence/discrimination.py), MCC, macro-F1 normalized to the best trivial answer (unclipped),
and the wall time of training and scoring. Writes ``curve.json``, ``curve.md`` and
``curve.png``/``curve.svg`` to ``--out``; work folders go under ``studies/learning-curve-development``.
Each point is skipped when its results exist, so a killed run resumes.

Study A's budget is chosen from this curve by a rule fixed before it runs (2026-12-07, for the
confirmatory run): the cheapest of ``--budgets 128 256 512`` at which every family's AUC interval
lies above 0.5 on the development rows; 512 (the most the 3-hour CPU size allows) if none does.
Revised the same day, on development rows only, before any test document: that rule picked 128,
where FinRED's fine-tune (0.637 [0.584, 0.685]) ranks no better than the vanilla model already
does (0.615), so "above 0.5" does not say the run learned. The rule in force: every family's AUC
interval lies above 0.5 *and* above the vanilla model's AUC on the same rows; 512 if none does.

``--setting amazon-base`` is Study B's training (ft-generalization/train.yaml: Gemma-3-270M
base, base prompt format, Amazon reviews from ``train_2000``, bf16, max length 1024) with a
learning-rate sweep (``--lrs``), scored on ``heldout_2000``: Amazon training rows outside
``train_2000``, so choosing the rate looks at neither the runs' training rows nor the test
documents the study's claims are decided on. Work folders: ``studies/learning-curve-amazon``.

``--setting xsum-base`` is Study B's XSum training (same model, recipe and seed) with a
learning-rate sweep, scored by ROUGE-L (with its paired difference from the vanilla model) on
XSum training rows that none of the sweep's runs and none of Study B's XSum runs train on
(XSum ships one 2,000-row subset, so there is no ``heldout_<N>`` split: the script writes the
development rows as a task of its own, and checks each run's training lineage against them).
Work folders: ``studies/learning-curve-xsum``.
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

from evidence.contamination import read_sample_rows
from evidence.discrimination import rows_auc
from evidence.records import run_record
from evidence.result_files import load_results, results_file, samples_file
from evidence.stats import align, paired_bootstrap, percentile_interval, read_samples
from plumbing.atomic import write_atomic

TASKS = {"headlines": "fin_headlines", "fpb": "fin_fpb", "fomc": "fin_fomc", "finred": "fin_finred"}
MODEL = "smollm2-135m-instruct"
WORK = Path("studies/learning-curve-study-a")  # the curve on development rows (earlier: on test slices)
REPO = Path(__file__).resolve().parents[1]
STUDY_A_TRAIN = yaml.safe_load((REPO / "recipes/studies/fin-instruct-merge/train.yaml").read_text())
SETTINGS = {
    "instruct-financial": {
        "model": MODEL, "prompt_format": "instruct", "tasks": TASKS, "work": WORK, "include": [],
        # Study A's own LoRA and training blocks, so the budget it chooses is the study's.
        "lora": STUDY_A_TRAIN["lora"], "training": STUDY_A_TRAIN["training"],
        "title": "SmolLM2-135M-Instruct with Study A's training block (recipes/studies/fin-instruct-merge/train.yaml), "
                 "one seed, scored zero-shot on {limit} prior-keeping development rows per task (validation rows "
                 "that repeat no test document)",
        "split": "development",
    },
    # The held-out tasks' own training splits (leak-free), as the forgetting positive control's
    # first run trains them: does the model learn them at all at this size? (Decided on their
    # development rows; the study's FinArg/FinCausal test documents are never read here.)
    "instruct-heldout": {
        "model": MODEL, "prompt_format": "instruct", "tasks": {"finarg": "fin_finarg_auc", "fincausal": "fin_fincausal"},
        "work": Path("studies/learning-curve-heldout"), "include": [],
        "lora": STUDY_A_TRAIN["lora"], "training": STUDY_A_TRAIN["training"],
        "title": "SmolLM2-135M-Instruct trained on the held-out tasks' training splits with Study A's training block, "
                 "one seed, scored zero-shot on {limit} prior-keeping development rows per task (validation rows "
                 "that repeat no test document)",
        "split": "development",
    },
    "amazon-base": {
        "model": "gemma3-270m", "prompt_format": "base", "work": Path("studies/learning-curve-amazon"),
        "tasks": {"amazon": "dev_gen_sentiment_amazon_mc"}, "train_task": {"name": "gen_sentiment_amazon",
                                                                          "split": "train_2000"},
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
        "training": {"lr": 2.0e-3, "epochs": 1, "batch_size": 4, "max_length": 1024, "precision": "bf16",
                     "logging_steps": 1},
        "title": "Gemma-3-270M base (Study B's training), one seed, scored zero-shot on {limit} prior-keeping "
                 "Amazon training rows outside train_2000 (split heldout_2000; never the test split)",
    },
    "xsum-base": {
        "model": "gemma3-270m", "prompt_format": "base", "work": Path("studies/learning-curve-xsum"),
        "tasks": {"xsum": "dev_gen_summary_xsum"}, "train_task": {"name": "gen_summary_xsum"}, "metric": "rougeL",
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
        "training": {"lr": 2.0e-3, "epochs": 1, "batch_size": 4, "max_length": 1024, "precision": "bf16",
                     "logging_steps": 1},
        "title": "Gemma-3-270M base (Study B's XSum training), one seed, scored zero-shot (ROUGE-L) on {limit} "
                 "XSum training rows that no run of this sweep or of Study B trains on (never the test split)",
    },
}
STUDY_B = REPO / "recipes/studies/ft-generalization"
DEV_TASK = """# Amazon sentiment (multiple choice) scored on heldout_2000: training rows outside train_2000.
task: dev_gen_sentiment_amazon_mc
include: {source}
dataset_kwargs: {{data_dir: {data}, labels: [negative, positive]}}
test_split: heldout_2000
"""


DEV_XSUM = """# XSum summaries scored on training rows no run of the sweep or of Study B trains on (written by
# scripts/learning_curve.py --setting xsum-base; XSum ships one 2,000-row subset, so no heldout_<N>).
task: dev_gen_summary_xsum
include: {source}
dataset_kwargs: {{data_dir: {data}}}
training_split: null  # the dev rows are the only split written, beside the few-shot pool
"""


def dev_tasks(work: Path) -> Path:
    """A task folder (lm-eval --include_path) with the Amazon dev task: no shipped task scores a training split."""
    folder = work / "tasks"
    folder.mkdir(parents=True, exist_ok=True)
    sentiment = REPO / "fin_tasks/tasks/generalization/sentiment"
    write_atomic(folder / "dev_gen_sentiment_amazon_mc.yaml",
                 DEV_TASK.format(source=sentiment / "gen_sentiment_amazon_mc.yaml", data=sentiment / "data/amazon"))
    return folder


def xsum_training_rows(budgets: list[int], seed: int = 42):
    """XSum's training documents, and the rows any sweep run (``seed``, each budget) or any of
    Study B's XSum runs (its recipes as `study run` builds them) draws, as training draws them."""
    from study.spec import load_study
    from training.examples import drawn_rows, load_tasks
    from training.recipe import TaskSpec

    task = load_tasks(["gen_summary_xsum"])["gen_summary_xsum"]
    docs = task.training_docs()
    study = load_study(STUDY_B)
    # The sweep's own runs (a single-task recipe per budget) and Study B's XSum recipes.
    draws = [(TaskSpec(name="gen_summary_xsum", samples=budget), seed, True) for budget in budgets] + [
        (spec, recipe.seed, recipe.leak_free) for recipe in study.train_recipes for spec in recipe.tasks
        if spec.name == "gen_summary_xsum"]
    return docs, {row for spec, s, leak_free in draws for row in drawn_rows(task, docs, spec, s, leak_free, [task])[1]}


DEV_BUDGETS = (32, 64, 128, 256, 512)  # the dev rows avoid these budgets' draws; another budget is checked by lineage


def xsum_dev_tasks(work: Path, limit: int) -> Path:
    """A task folder with ``dev_gen_summary_xsum``: ``limit`` seeded XSum training rows outside every draw
    (the same rows whichever budgets a sweep runs, so its vanilla scores stay comparable)."""
    import random

    folder = work / "tasks"
    data = folder / "data" / "xsum"
    source = REPO / "fin_tasks/tasks/generalization/summary"
    docs, drawn = xsum_training_rows(list(DEV_BUDGETS))
    unseen = [i for i in range(len(docs)) if i not in drawn]
    chosen = sorted(random.Random("xsum-dev").sample(unseen, limit))
    data.mkdir(parents=True, exist_ok=True)
    text = "\n".join(json.dumps({k: docs[i][k] for k in ("id", "input", "output")}) for i in chosen) + "\n"
    if (data / "test.jsonl").is_file() and (data / "test.jsonl").read_text() != text:
        raise SystemExit(f"{data / 'test.jsonl'} holds other dev rows (another --limit?): its scores would not "
                         f"compare; use a fresh {work}")
    write_atomic(data / "test.jsonl", text)
    write_atomic(data / "fewshot.jsonl", (source / "data/xsum/fewshot.jsonl").read_text())
    write_atomic(folder / "dev_gen_summary_xsum.yaml",
                 DEV_XSUM.format(source=source / "gen_summary_xsum.yaml", data=data.resolve()))
    return folder


def check_unseen(run_dir: Path, work: Path) -> None:
    """Refuse a run whose training lineage holds a development document (the sweep would score its own rows)."""
    from fin_tasks.common.data import read_jsonl
    from plumbing.lineage import read_lineage

    lineage = read_lineage(run_dir)
    if lineage.status != "known":
        raise SystemExit(f"{run_dir}: training lineage unknown ({lineage.why}); cannot check the dev rows")
    dev = [row["input"] for row in read_jsonl(work / "tasks/data/xsum/test.jsonl", fields=("input",))]
    seen = int(lineage.fingerprint.same_texts(dev).sum())
    if seen:
        raise SystemExit(f"{run_dir}: {seen} development documents are among its training texts")


def run(command: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as fh:
        subprocess.run(command, stdout=fh, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def scored_generation(folder: Path, task: str, metric: str) -> dict:
    results = load_results(results_file(folder))
    values = read_samples(samples_file(folder, task), metric)
    return {"docs": len(values), metric: results["results"][task][f"{metric},none"], "per_doc": values,
            "rouge1": results["results"][task]["rouge1,none"]}


def scored(folder: Path, task: str, metric: str | None = None) -> dict:
    if metric:
        return scored_generation(folder, task, metric)
    results = load_results(results_file(folder))
    rows = read_sample_rows(samples_file(folder, task))
    point, reps = rows_auc(rows, task)
    low, high = percentile_interval(reps[np.isfinite(reps)])
    found = run_record(results)["baselines"][task]
    return {"docs": len(rows), "auc": point, "auc_ci": [low, high], "mcc": results["results"][task]["mcc,none"],
            "acc": results["results"][task]["acc,none"], "f1_macro": results["results"][task]["f1_macro,none"],
            "f1_macro_normalized": found["normalized"]["f1_macro"], "collapsed": found["collapsed"]}


def evaluate(model: str, task: str, out: Path, limit: int, include: list[Path] = (),
             metric: str | None = None, split: str = "test") -> tuple[dict, float]:
    seconds = 0.0
    if not any(out.rglob("results_*.json")):
        out.parent.mkdir(parents=True, exist_ok=True)
        extra = [arg for folder in include for arg in ("--include_path", str(folder))] + ["--split", split]
        seconds = run(["finharness", "eval", "-m", model, "-t", task, "--limit", str(limit), "-o", str(out), *extra],
                      out.parent / f"{out.name}.log")
    return scored(out, task, metric), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--setting", choices=list(SETTINGS), default="instruct-financial")
    parser.add_argument("--budgets", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--lrs", type=float, nargs="+", help="learning rates (default: the setting's)")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--tasks", nargs="+", help="task families (default: all of the setting's)")
    args = parser.parse_args()
    setting = SETTINGS[args.setting]
    work, model = setting["work"], setting["model"]
    include = {"amazon-base": lambda: [dev_tasks(work)],
               "xsum-base": lambda: [xsum_dev_tasks(work, args.limit)]}.get(args.setting, list)()
    lrs = args.lrs or [setting["training"]["lr"]]
    metric = setting.get("metric")
    points = []
    for family in args.tasks or list(setting["tasks"]):
        task = setting["tasks"][family]
        found, seconds = evaluate(model, task, work / "evals" / f"vanilla-{family}", args.limit, include, metric,
                                  setting.get("split", "test"))
        vanilla = found.pop("per_doc", None)
        points.append({"task": task, "budget": 0, "lr": None, "train_seconds": 0.0, "eval_seconds": seconds, **found})
        print(json.dumps(points[-1]), flush=True)
        for budget in args.budgets:
            for lr in lrs:
                name = f"{family}-{budget}" + (f"-lr{lr:g}" if args.lrs else "")
                point = train_and_score(setting, family, task, budget, lr, name, args.limit, include)
                if metric:  # the run's change on the same documents, with a paired interval
                    tuned, base = align(point.pop("per_doc"), vanilla, (name, "vanilla"))
                    delta = paired_bootstrap([float(v) for v in tuned], [float(v) for v in base])
                    point |= {"delta": delta.estimate, "delta_ci": [delta.low, delta.high]}
                points.append(point)
                print(json.dumps(points[-1]), flush=True)
                write_outputs(points, args.out, setting["title"].format(limit=args.limit), metric)


def train_and_score(setting: dict, family: str, task: str, budget: int, lr: float, name: str, limit: int,
                    include: list[Path]) -> dict:
    work = setting["work"]
    run_dir = work / "runs" / name
    train_seconds = 0.0
    if not (run_dir / "finharness.json").is_file():
        train_task = {**setting.get("train_task", {"name": task}), "samples": budget}
        recipe = {"name": name, "base_model": setting["model"], "tasks": [train_task],
                  "prompt_format": setting["prompt_format"], "lora": setting["lora"],
                  "training": {**setting["training"], "lr": lr}, "seed": 42, "output_dir": str(work / "runs")}
        path = work / "recipes" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        train_seconds = run(["finharness", "train", str(path)], work / "recipes" / f"{name}.log")
    manifest = json.loads((run_dir / "finharness.json").read_text())["data"]
    if setting.get("metric"):
        check_unseen(run_dir, work)
    found, seconds = evaluate(str(run_dir), task, work / "evals" / name, limit, include, setting.get("metric"),
                              setting.get("split", "test"))
    return {"task": task, "budget": budget, "lr": lr, "steps": manifest["steps"],
            "train_seconds": manifest["seconds"] if not train_seconds else train_seconds,
            "final_loss": manifest["final_loss"], "eval_seconds": seconds, **found}


def write_generation_outputs(points: list[dict], out: Path, title: str, metric: str) -> None:
    """A sweep scored by a generation metric: the score and its paired change from the vanilla model."""
    from tabulate import tabulate

    from plumbing.plots import pyplot, save

    rows = [[p["task"], p["budget"] or "vanilla", f"{p['lr']:g}" if p.get("lr") else "", p.get("steps", ""),
             f"{p[metric]:.3f}", f"{p['delta']:+.3f} [{p['delta_ci'][0]:+.3f}, {p['delta_ci'][1]:+.3f}]"
             if "delta" in p else "", f"{p['rouge1']:.3f}", f"{p['train_seconds']:.0f}",
             f"{p.get('final_loss', float('nan')):.3f}", f"{p['eval_seconds']:.0f}"] for p in points]
    table = tabulate(rows, headers=["task", "examples", "lr", "steps", metric, f"Δ {metric} vs vanilla [95% CI]",
                                    "rouge1", "train s", "final loss", "eval s"],
                     tablefmt="github", disable_numparse=True)
    write_atomic(out / "curve.md", f"{title} (vanilla: examples = vanilla; Δ: paired bootstrap over the "
                                   f"documents).\n\n{table}\n")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for budget in sorted({p["budget"] for p in points if p["budget"]}):
        shown = sorted((p for p in points if p["budget"] == budget), key=lambda p: p["lr"])
        ax.errorbar([p["lr"] for p in shown], [p["delta"] for p in shown], marker="o", capsize=3,
                    yerr=[[p["delta"] - p["delta_ci"][0] for p in shown], [p["delta_ci"][1] - p["delta"] for p in shown]],
                    label=f"{budget} examples")
    ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"Δ {metric} vs vanilla (95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out / "curve")
    plt.close(fig)


def write_outputs(points: list[dict], out: Path, title: str, metric: str | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "curve.json", json.dumps(points, indent=1))
    if metric:
        return write_generation_outputs(points, out, title, metric)
    from tabulate import tabulate

    from plumbing.plots import pyplot, save

    rows = [[p["task"], p["budget"] or "vanilla", f"{p['lr']:g}" if p.get("lr") else "", p.get("steps", ""),
             f"{p['auc']:.3f} [{p['auc_ci'][0]:.3f}, "
             f"{p['auc_ci'][1]:.3f}]", f"{p['mcc']:.3f}", f"{p['f1_macro_normalized']:+.3f}", f"{p['acc']:.3f}",
             p["collapsed"] or "", f"{p['train_seconds']:.0f}", f"{p.get('final_loss', float('nan')):.3f}"]
            for p in points]
    table = tabulate(rows, headers=["task", "examples", "lr", "steps", "AUC [95% CI]", "MCC", "macro-F1 normalized",
                                    "acc", "collapsed onto", "train s", "final loss"],
                     tablefmt="github", disable_numparse=True)
    write_atomic(out / "curve.md", f"{title} (vanilla: examples = vanilla).\n\n{table}\n")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    sweep = len({p["lr"] for p in points if p.get("lr")}) > 1  # a learning-rate sweep: AUC against the rate
    for task in dict.fromkeys(p["task"] for p in points):
        mine = [p for p in points if p["task"] == task]
        order = (lambda p: (p["lr"], p["budget"])) if sweep else (lambda p: p["budget"])
        trained = sorted((p for p in mine if p["budget"]), key=order)
        shown = trained if sweep else [p for p in mine if not p["budget"]] + trained
        x = [p["lr"] if sweep else max(p["budget"], 8) for p in shown]  # vanilla drawn at 8 examples
        y = [p["auc"] for p in shown]
        err = [[p["auc"] - p["auc_ci"][0] for p in shown], [p["auc_ci"][1] - p["auc"] for p in shown]]
        line = ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=task)
        if sweep:
            vanilla = [p for p in mine if not p["budget"]]
            for p in vanilla:
                ax.axhline(p["auc"], color=line[0].get_color(), linestyle=":", linewidth=1, label=f"{task} vanilla")
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log", base=10 if sweep else 2)
    ax.set_xlabel("learning rate (one budget)" if sweep else "training examples (8 = vanilla)")
    ax.set_ylabel("macro one-vs-rest AUC (95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out / "curve")
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
