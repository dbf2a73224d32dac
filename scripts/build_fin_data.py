"""Build the packaged offline data of the financial suite from ``../shared/data``.

Writes ``fin_tasks/<family>/data/{train,validation,test}.jsonl`` with rows
``{"id", "text", "label", ...}`` where ``label`` is already the verbalised choice the
task YAML lists (so the YAML label set is the single source of truth and the loader
only has to check membership). Deterministic: every shuffle and cut uses
``random.Random(42)``. Re-run it after ``../shared/data`` changes:

    python scripts/build_fin_data.py [--shared ../shared/data]

Test splits are shuffled too, so ``--limit N`` (lm-eval takes the first N docs in
split order) gives a sample of every class rather than the first N rows of one file.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = 42


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def shuffled(rows: list[dict]) -> list[dict]:
    rows = list(rows)
    random.Random(SEED).shuffle(rows)
    return rows


def cut(rows: list[dict], n_valid: int) -> tuple[list[dict], list[dict]]:
    """Shuffle, then split off ``n_valid`` rows as validation (the rest is train)."""
    rows = shuffled(rows)
    return rows[n_valid:], rows[:n_valid]


def keep(row: dict, *fields: str, label=None) -> dict:
    out = {"id": str(row["id"]), "text": row["text"]}
    for f in fields:
        out[f] = row[f]
    out["label"] = row["label"] if label is None else label
    return out


def build(shared: Path) -> dict[str, dict[str, list[dict]]]:
    families: dict[str, dict[str, list[dict]]] = {}

    # FPB 50% agreement: the shared split is already FinBen's valid + seeded train/test.
    d = shared / "fpb"
    families["fpb"] = {
        "train": [keep(r) for r in read_jsonl(d / "train.jsonl")],
        "validation": [keep(r) for r in read_jsonl(d / "valid.jsonl")],
        "test": [keep(r) for r in read_jsonl(d / "test.jsonl")],
    }

    # FiQA-SA: labels Positive/Negative/Neutral -> lower case (FinBen's choices).
    d = shared / "fiqa_sa"
    families["fiqa_sa"] = {
        split: [keep(r, "type", label=r["label"].lower()) for r in read_jsonl(d / f"{src}.jsonl")]
        for split, src in (("train", "train"), ("validation", "valid"), ("test", "test"))
    }

    # TFNS: upstream has train + validation only; its validation is the usual test set,
    # and a 10% validation is cut from train. Labels 0/1/2 -> Bearish/Bullish/Neutral.
    d = shared / "tfns"
    names = {"0": "Bearish", "1": "Bullish", "2": "Neutral"}

    def tfns(file: str, prefix: str) -> list[dict]:
        with (d / file).open(encoding="utf-8", newline="") as fh:
            return [
                {"id": f"tfns_{prefix}_{i}", "text": r["text"], "label": names[r["label"]]}
                for i, r in enumerate(csv.DictReader(fh))
            ]

    train, valid = cut(tfns("sent_train.csv", "train"), 954)
    families["tfns"] = {"train": train, "validation": valid, "test": tfns("sent_valid.csv", "valid")}

    # Gold headlines, price direction (up / stable / down).
    d = shared / "headlines"
    families["headlines"] = {
        split: [keep(r) for r in read_jsonl(d / f"headline_dir_{src}.jsonl")]
        for split, src in (("train", "train"), ("validation", "valid"), ("test", "test"))
    }

    # FinRED: one row per (sentence, head, tail) triple; official train/dev/test.
    d = shared / "finred"
    families["finred"] = {
        split: [keep(r, "head", "tail") for r in read_jsonl(d / f"{src}.jsonl")]
        for split, src in (("train", "train"), ("validation", "dev"), ("test", "test"))
    }

    # FOMC, seed 5768 split (the repo's first); 10% of train as validation (paper: 1,785/199).
    d = shared / "fomc"
    train, valid = cut([keep(r) for r in read_jsonl(d / "seed5768_train.jsonl")], 199)
    families["fomc"] = {
        "train": train,
        "validation": valid,
        "test": [keep(r) for r in read_jsonl(d / "seed5768_test.jsonl")],
    }

    # FinArg ECC AUC (held out): the labelled dev file is FinBen's test (969 rows).
    d = shared / "finarg_ecc_auc"
    train, valid = cut([keep(r) for r in read_jsonl(d / "train.jsonl")], 500)
    families["finarg_auc"] = {
        "train": train,
        "validation": valid,
        "test": [keep(r) for r in read_jsonl(d / "dev.jsonl")],
    }

    # FinCausal 2020 task 1 (held out): trial (8,580) ~ FinBen's test (8,630); practice
    # is the training pool, 10% of it validation.
    d = shared / "fincausal2020_task1"
    train, valid = cut([keep(r) for r in read_jsonl(d / "practice.jsonl")], 1348)
    families["fincausal"] = {
        "train": train,
        "validation": valid,
        "test": [keep(r) for r in read_jsonl(d / "trial.jsonl")],
    }

    for splits in families.values():
        for name in list(splits):
            # An empty text is no document (FinCausal has 4): dropped after the shuffle,
            # so every other row keeps the place it had before the drop.
            splits[name] = [r for r in shuffled(splits[name]) if r["text"].strip()]
    return families


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "fin_tasks" / "tasks")
    args = parser.parse_args()
    for family, splits in build(args.shared).items():
        for split, rows in splits.items():
            write_jsonl(args.out / family / "data" / f"{split}.jsonl", rows)
            print(f"{family:12s} {split:10s} {len(rows):6d}")


if __name__ == "__main__":
    main()
