"""How much of a fine-tune's gain on a task survives on the documents it may not have seen.

    python scripts/measure_clean_gain.py FT_RESULTS VANILLA_RESULTS --task fin_headlines --out DIR

Both folders are ``finharness eval --output_path`` folders scored on the same documents. The
fine-tune's folder names its checkpoint, whose lineage flags what it trained on; the task's
other splits and few-shot pool flag the rest (evidence/contamination.py). Prints, for accuracy
and macro-F1, both models' full and clean-subset scores and the gain on each subset, with a
paired bootstrap interval of (clean gain - full gain) for accuracy (a per-document mean); writes
a compact per-document log (gold, both answers, flags) and the table to ``--out``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from evidence.contamination import clean_score, folder_report, read_sample_rows
from evidence.result_files import samples_file
from fin_tasks.common.metrics import aggregation_of
from plumbing.atomic import write_atomic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ft", type=Path)
    parser.add_argument("vanilla", type=Path)
    parser.add_argument("--task", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    lineage, reports = folder_report(args.ft, tasks=[args.task])
    report = reports[args.task]
    rows = {name: {int(r["doc_id"]): r for r in read_sample_rows(samples_file(folder, args.task))}
            for name, folder in (("ft", args.ft), ("vanilla", args.vanilla))}
    if rows["ft"].keys() != rows["vanilla"].keys():
        raise SystemExit("the two folders were not scored on the same documents")
    docs = sorted(rows["ft"])
    dirty = set(report.contaminated)
    clean = np.array([d not in dirty for d in docs])
    table = [f"{args.task}: {len(docs)} documents, {len(dirty)} flagged ({report.share:.1%}): "
             + ", ".join(f"{len(ids)} in {src}" for src, ids in report.flagged.items())
             + f". Lineage of the fine-tune: {lineage.describe()}.", "",
             "| metric | model | all | clean | flagged |", "|---|---|---|---|---|"]
    summary: dict = {"task": args.task, "docs": len(docs), "flagged": {s: len(i) for s, i in report.flagged.items()},
                     "contaminated": len(dirty), "scores": {}}
    for metric in ("acc", "f1_macro"):
        for model in ("ft", "vanilla"):
            values = [tuple(rows[model][d][metric]) if isinstance(rows[model][d][metric], list)
                      else rows[model][d][metric] for d in docs]
            agg = aggregation_of(metric)
            found = {"all": agg(values), "clean": agg([v for v, c in zip(values, clean) if c]),
                     "flagged": agg([v for v, c in zip(values, clean) if not c])}
            summary["scores"][f"{metric} {model}"] = found
            table.append(f"| {metric} | {model} | {found['all']:.4f} | {found['clean']:.4f} | {found['flagged']:.4f} |")
        gain = {k: summary["scores"][f"{metric} ft"][k] - summary["scores"][f"{metric} vanilla"][k]
                for k in ("all", "clean", "flagged")}
        summary["scores"][f"{metric} gain"] = gain
        table.append(f"| {metric} | gain | {gain['all']:+.4f} | {gain['clean']:+.4f} | {gain['flagged']:+.4f} |")
    diff = [rows["ft"][d]["acc"] - rows["vanilla"][d]["acc"] for d in docs]
    found = clean_score(diff, clean, "acc", args.task)
    summary["acc gain clean - all"] = {"difference": found.difference, "interval": found.interval}
    table += ["", f"Accuracy gain on the clean subset minus the gain on all documents: {found.difference:+.4f} "
                  f"(paired 95% bootstrap interval [{found.interval[0]:+.4f}, {found.interval[1]:+.4f}], "
                  f"1,000 resamples)."]
    # The documents the fine-tune itself trained on, against the clean ones (Fisher's exact test).
    from scipy.stats import fisher_exact

    seen = set(report.flagged.get("lineage", []))
    if seen:
        right = {k: [rows["ft"][d]["acc"] for d in docs if (d in seen if k == "seen" else d not in dirty)]
                 for k in ("seen", "clean")}
        counts = [[int(sum(v)), len(v) - int(sum(v))] for v in right.values()]
        p = float(fisher_exact(counts).pvalue)
        summary["ft acc on its own training documents vs clean"] = {
            "trained on": {"docs": len(right["seen"]), "acc": float(np.mean(right["seen"]))},
            "clean": {"docs": len(right["clean"]), "acc": float(np.mean(right["clean"]))}, "fisher_p": p}
        table.append(f"The fine-tune's accuracy on the {len(right['seen'])} test documents it trained on: "
                     f"{np.mean(right['seen']):.3f}; on the {len(right['clean'])} clean ones: "
                     f"{np.mean(right['clean']):.3f} (Fisher's exact test, two-sided p = {p:.3g}).")
    args.out.mkdir(parents=True, exist_ok=True)
    flags = {d: [src for src, ids in report.flagged.items() if d in set(ids)] for d in docs}
    log = "".join(json.dumps({"doc_id": d, "gold": rows["ft"][d]["f1_macro"][0], "ft": rows["ft"][d]["f1_macro"][1],
                              "vanilla": rows["vanilla"][d]["f1_macro"][1], "flags": flags[d]}) + "\n" for d in docs)
    write_atomic(args.out / "per_doc.jsonl", log)
    write_atomic(args.out / "summary.json", json.dumps(summary, indent=1))
    write_atomic(args.out / "table.md", "\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
