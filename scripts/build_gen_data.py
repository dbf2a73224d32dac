"""Package the generalization suite's data (arXiv 2403.09162) from ``../shared/data``.

The paper ships its own subsets as JSON arrays (``*_test_500``, ``*_train_{2000,4000,6000}``,
``few_shot/*``). This script copies them, unchanged in content and order, to
``fin_tasks/tasks/generalization/<type>/data/<dataset>/{test,train,fewshot}.jsonl``:

- ``test.jsonl``: the paper's test subset in the paper's order (its evaluation used the
  first rows, so ``--limit 250`` reproduces a 250-item run). NLI rows labelled ``-`` are
  kept here and dropped by the loader, which reports the count.
- ``train.jsonl``: the largest training subset. The paper's subsets are nested
  (2000 within 4000 within 6000, as sets; PAWS 2000 is not a prefix of its 4000), so each
  row records ``train_subset``, the smallest paper subset it belongs to, and the loader
  exposes the splits ``train_2000``, ``train_4000``, ``train_6000`` as exactly the rows of
  the paper's ``*_train_N.json`` (in the order of the largest file).
- ``fewshot.jsonl``: the paper's in-context examples, in the paper's order.

Every row gets an ``id`` (``<dataset>-<split>-<row>``); the paper's own fields
(``input``, ``input_1``, ``input_2``, ``answer``, ``output``, ``idx``) are kept as they
are, so the task prompts use the paper's field names. Re-run after ``../shared/data``
changes:

    python scripts/build_gen_data.py [--shared ../shared/data]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from build_fin_data import REPO, write_jsonl  # same folder: run as a script

OUT = REPO / "fin_tasks" / "tasks" / "generalization"

# (task type, packaged dataset name, shared dir, file prefix)
DATASETS = [
    ("summary", "xsum", "xsum", "xsum"),
    ("summary", "xlsum", "xlsum", "xlsum"),
    ("summary", "cnn_dailymail", "cnn_dailymail", "cnn"),
    ("summary", "peerread", "peerread", "pdfs"),
    ("question", "socialiqa", "socialiqa_qg", "socialqa"),
    ("question", "tweetqa", "tweetqa_qg", "tweetqa"),
    ("question", "sciq", "sciq_qg", "sciqa"),
    ("sentiment", "amazon", "amazon", "amazon"),
    ("sentiment", "amazon_food", "amazon_food", "amazonfood"),
    ("sentiment", "sst2", "sst2", "sst2"),
    ("sentiment", "yelp", "yelp", "yelp"),
    ("paraphrase", "paws", "paws", "paws"),
    ("paraphrase", "qqp", "qqp", "qqp"),
    ("paraphrase", "stsb", "stsb", "stsb"),
    ("nli", "mnli_m", "mnli", "multinli"),
    ("nli", "mnli_mm", "mnli_mismatched", "multinli2"),
    ("nli", "rte", "rte", "rte"),
    ("nli", "snli", "snli", "snli"),
    ("nli", "gptnli", "gptnli", "gptnli"),
]


def read_array(path: Path) -> list[dict]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise SystemExit(f"{path}: expected a JSON array of objects")
    return rows


def with_ids(rows: list[dict], dataset: str, split: str) -> list[dict]:
    return [{"id": f"{dataset}-{split}-{i}", **row} for i, row in enumerate(rows)]


def train_rows(src: Path, prefix: str) -> list[dict] | None:
    """The largest training file's rows, each tagged with the smallest subset holding it."""
    files = sorted(src.glob(f"{prefix}_train_*.json"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    if not files:
        return None
    subsets = [(int(f.stem.rsplit("_", 1)[1]), read_array(f)) for f in files]
    biggest = subsets[-1][1]
    key = lambda row: json.dumps(row, sort_keys=True)  # noqa: E731
    smallest: dict[str, int] = {}
    for size, rows in reversed(subsets):
        keys = {key(r) for r in rows}
        if len(keys) != len(rows):
            raise SystemExit(f"{src}/{prefix}_train_{size}.json: repeated rows; subsets cannot be told apart")
        if not keys <= {key(r) for r in biggest}:
            raise SystemExit(f"{src}/{prefix}_train_{size}.json: not a subset of {files[-1].name}")
        for k in keys:
            smallest[k] = size
    return [{**row, "train_subset": smallest[key(row)]} for row in biggest]


def build(shared: Path) -> list[tuple[str, str, dict[str, int]]]:
    summary = []
    for task_type, name, folder, prefix in DATASETS:
        src = shared / folder
        dest = OUT / task_type / "data" / name
        sizes = {}
        parts = {"test": src / f"{prefix}_test_500.json", "fewshot": src / f"{prefix}_few_shot.json"}
        for split, path in parts.items():
            if path.is_file():
                rows = with_ids(read_array(path), name, split)
                write_jsonl(dest / f"{split}.jsonl", rows)
                sizes[split] = len(rows)
        train = train_rows(src, prefix)
        if train is not None:
            write_jsonl(dest / "train.jsonl", with_ids(train, name, "train"))
            for size in sorted({r["train_subset"] for r in train}):
                sizes[f"train_{size}"] = sum(r["train_subset"] <= size for r in train)
        summary.append((task_type, name, sizes))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    for task_type, name, sizes in build(args.shared):
        print(f"{task_type:<11} {name:<14} " + "  ".join(f"{k} {v}" for k, v in sorted(sizes.items())))


if __name__ == "__main__":
    main()
