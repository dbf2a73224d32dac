"""A model card's ``model-index`` from a finharness / lm-eval results folder.

One ``huggingface_hub.EvalResult`` per task and metric the run reports: the task's Hub
dataset id (its YAML's ``dataset_path``) and split, the number of shots, and whether the
documents were a slice (``--limit``), so a reader of the card sees what the score rests on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from evidence.records import run_record
from evidence.result_files import load_results, results_file

TASK_TYPES = {"multiple_choice": "text-classification", "loglikelihood": "text-classification"}


def eval_results(folder: Path) -> list[Any]:
    from huggingface_hub import EvalResult

    data = load_results(results_file(Path(folder)))
    groups = set(data.get("groups", {})) | set(data.get("group_subtasks", {}))
    configs = data.get("configs", {})
    shots = data.get("n-shot", {})
    recorded = run_record(data).get("slice") or {}
    limit = recorded.get("limit") or (data.get("config") or {}).get("limit")
    how = (
        f"{recorded['method']} slice, seed {recorded.get('seed')}"
        if recorded.get("method") in ("stratified", "random")
        else "first documents"
    )
    out = []
    for task, scores in sorted(data["results"].items()):
        if task in groups:
            continue
        config = configs.get(task, {})
        metrics = {k.partition(",")[0]: v for k, v in scores.items()
                   if k.endswith(",none") and "_stderr" not in k and isinstance(v, (int, float))}
        kind = ("summarization" if any(m.startswith("rouge") for m in metrics)
                else TASK_TYPES.get(config.get("output_type"), "text-classification"
                                    if config.get("doc_to_choice") else "text-generation"))
        for metric, value in metrics.items():
            out.append(
                EvalResult(
                    task_type=kind,
                    dataset_type=str(config.get("dataset_path") or task),
                    dataset_name=task,
                    dataset_split=config.get("test_split"),
                    metric_type=metric,
                    metric_value=float(value),
                    metric_name=f"{metric} ({shots.get(task, 0)}-shot"
                    + (
                        f", {int(limit) if float(limit).is_integer() else limit} docs per task, {how})"
                        if limit
                        else ")"
                    ),
                    verified=False,
                )
            )
    return out
