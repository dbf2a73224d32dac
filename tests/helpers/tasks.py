"""Task folders and results a test writes: a drop-in task YAML with its data, the README's
held-out task files, an lm-eval results file with given scores."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fin_tasks import TASKS_DIR

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = TASKS_DIR / "_multiple_choice_yaml"
HELD_OUT_TASK = "fin_earnings_tone"  # the README's held-out example task


def readme_files() -> dict[str, str]:
    """``<!-- file: PATH -->`` followed by a fenced block, in the README's held-out section."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Adding a held-out task") :]
    section = section[: section.index("\n## ", 3)]
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", section, flags=re.S)
    return {path: body for path, body in blocks}


def write_task(folder: Path, body: str, rows: dict[str, list[dict]] | None = None) -> Path:
    """A drop-in task: a YAML that includes the shared template, plus a data/ folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fin_demo.yaml"
    path.write_text(f"include: {TEMPLATE}\ntask: fin_demo\n" + body)
    for split, split_rows in (rows or {}).items():
        (folder / "data").mkdir(exist_ok=True)
        (folder / "data" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in split_rows))
    return path


GOOD_BODY = """dataset_kwargs:
  labels: &labels [down, up]
doc_to_choice: *labels
doc_to_text: "Headline: {{text}}\\nAnswer:"
"""

ROWS = [{"id": str(i), "text": f"gold moves {i}", "label": ["down", "up"][i % 2]} for i in range(6)]

ALL_SPLITS = {"train": ROWS, "validation": ROWS, "test": ROWS}


def write_results(folder, scores, groups=()):
    folder.mkdir(parents=True)
    results = {task: {"alias": task, "acc,none": acc, "acc_stderr,none": "N/A"} for task, acc in scores.items()}
    for group in groups:
        results[group] = {"alias": group, "acc,none": 0.0}
    (folder / "results_2026-11-22T00-00-00.json").write_text(
        json.dumps({"results": results, "groups": {g: {} for g in groups}})
    )
    return folder


def alias_bomb(indent: str = "") -> str:
    """YAML lines of nine levels of nine aliases (9**9 values once expanded), ``a9`` the last."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(indent + line for line in levels) + "\n"
