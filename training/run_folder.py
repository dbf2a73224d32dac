"""The run folder: what a finished training run leaves, and how an unfinished one looks.

A run is built in ``<name>.partial/`` (resumable checkpoints live there) and renamed to
``<name>/`` only after its manifest (``finharness.json``, plumbing/folders.py) is written
last. So a folder named like a run is always a finished run; a killed run is only ever
``*.partial``.

Finished layout (the folder itself is a Hugging Face checkpoint):
    config.json, model.safetensors, tokenizer files   merged full model (lm-eval, MergeKit)
    adapter/                                           the PEFT LoRA adapter (not for method: full_finetune)
    trackers/                                          TensorBoard / W&B logs (training.report_to)
    recipe.yaml                                        the recipe with every default filled in
    train_log.jsonl                                    the training curve
    README.md                                          model card
    finharness.json                                    the manifest: metrics, prompt format; written last
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from tabulate import tabulate

from plumbing.atomic import write_atomic
from plumbing.jsonl import jsonl_rows
from plumbing.model_cards import card_text, hub_base_model

LOG = "train_log.jsonl"


def read_log(folder: Path, up_to_step: int | None = None) -> list[dict]:
    path = folder / LOG
    if not path.is_file():
        return []
    rows = [row for _, row in jsonl_rows(path)]
    return [r for r in rows if up_to_step is None or r["step"] <= up_to_step]


def write_log(folder: Path, rows: Sequence[dict]) -> None:
    write_atomic(folder / LOG, "".join(json.dumps(r) + "\n" for r in rows))


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "peft", "accelerate", "lm_eval", "finharness"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def model_card(*, recipe_yaml: str, run: dict[str, Any], log: Sequence[dict]) -> str:
    data_rows = [[t["name"], t["examples"]] for t in run["tasks"]]
    curve = [[r["step"], r["epoch"], f"{r['loss']:.4f}", f"{r['lr']:.2e}"] for r in log]
    versions = [[k, v] for k, v in run["versions"].items()]
    fticl = run["fticl_k"]
    return card_text(
        f"""# {run['name']}

{_what(run)}

- Prompt format: **{run['prompt_format']}** (prompts rendered by lm-eval from the task YAMLs)
- FTICL demonstrations per prompt: **{fticl}**
- Examples: {run['examples']} ({run['truncated']} with their prompt start cut to fit,
  {run['dropped']} dropped: answer longer than max_length)
- Optimizer steps: {run['steps']}; precision: {run['precision']}; processes: {run['world_size']}
- Wall time: {run['seconds']:.1f} s; {run['tokens_per_second']:.1f} tokens/s; final loss {run['final_loss']:.4f}

## Data

{tabulate(data_rows, headers=['task', 'training examples'], tablefmt='github')}

## Training curve (answer-token cross-entropy)

{tabulate(curve, headers=['step', 'epoch', 'loss', 'lr'], tablefmt='github', disable_numparse=True)}

## Recipe

```yaml
{recipe_yaml.rstrip()}
```

## Library versions

{tabulate(versions, headers=['package', 'version'], tablefmt='github')}
""",
        base_model=hub_base_model(run["base_model"]),
        library_name="transformers",
        tags=["finharness", _tag(run), *(["fticl"] if fticl else []), *(t["name"] for t in run["tasks"])],
        base_model_relation="finetune",
    )


def _tag(run: dict[str, Any]) -> str:
    return {"full_finetune": "full-finetune", "qlora": "qlora"}.get(run.get("method", "lora"), "lora")


def _what(run: dict[str, Any]) -> str:
    if run.get("method") == "full_finetune":
        return (f"Full fine-tune (every weight trained, no adapter) of `{run['base_model']}` made by "
                "`finharness train`. The folder holds the model (safetensors).")
    kind = "QLoRA (4-bit NF4 base)" if run.get("method") == "qlora" else "LoRA"
    return (f"{kind} fine-tune of `{run['base_model']}` made by `finharness train`. The folder holds the\n"
            "merged full model (safetensors) and, in `adapter/`, the PEFT adapter.")


def adapter_card(*, run: dict[str, Any]) -> str:
    """The adapter's own card (PEFT writes an empty template there)."""
    tasks = ", ".join(f"`{t['name']}` ({t['examples']} examples)" for t in run["tasks"])
    return card_text(f"""# {run['name']} (LoRA adapter)

PEFT LoRA adapter of `{run['base_model']}`, trained by `finharness train` on {tasks}
({run['prompt_format']} prompt format, {run['fticl_k']} FTICL demonstrations per prompt,
{run['steps']} optimizer steps, final loss {run['final_loss']:.4f}). The folder above this one
holds the same weights merged into the base model, and the full card with the recipe and the
training curve.

```python
from peft import AutoPeftModelForCausalLM
model = AutoPeftModelForCausalLM.from_pretrained("path/to/adapter")
```
""", base_model=hub_base_model(run["base_model"]), library_name="peft",
                     tags=["finharness", "lora", *(["fticl"] if run["fticl_k"] else [])], base_model_relation="adapter")
