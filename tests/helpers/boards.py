"""Boards for the page and app tests: entries added directly, and the served app started as a
user starts it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from leaderboard.store import Board, settings_key


def add(board: Board, model: str, fpb: float, finarg: float, **extra) -> int:
    fields = dict(
        model=model,
        revision=f"rev-{model}",
        precision="float32",
        weight_type="original",
        chat_template=True,
        settings=settings_key(["fin_fpb", "fin_finarg_auc"], 0, 50),
        model_type="instruct",
        base_model=None,
        recipe=None,
        recipe_text=None,
        results_path="-",
        scores={"fin_fpb": {"acc": fpb, "f1_macro": fpb / 2}, "fin_finarg_auc": {"acc": finarg}},
        docs={"fin_fpb": 50, "fin_finarg_auc": 50},
        metadata={},
    )
    fields.update(extra)
    return board.add(fields)


MERGE_RECIPE = (
    "method: task_arithmetic\nbase_model: smollm2-135m-instruct\nmodels:\n"
    "  - {model: runs/fpb-lora, weight: 0.25}\n  - {model: runs/fomc-lora, weight: 0.75}\n"
)


def entries(board: Board) -> None:
    add(board, "smollm2-135m-instruct", fpb=0.45, finarg=0.40)
    add(
        board,
        "fin-merge-ta",
        fpb=0.70,
        finarg=0.55,
        model_type="merged",
        base_model="smollm2-135m-instruct",
        recipe="recipes/merges/ta.yaml",
        recipe_text=MERGE_RECIPE,
        metadata={
            "baselines": {
                "fin_fpb": {
                    "predicted": {"neutral": 48, "positive": 2},
                    "collapsed": "neutral",
                    "baselines": {"majority": {"f1_macro": 0.26}},
                    "normalized": {"f1_macro": 0.0},
                }
            }
        },
    )
    add(board, "fin-fpb-lora", fpb=0.90, finarg=0.20, model_type="fine-tuned", base_model="smollm2-135m-instruct")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_board(board: Board):
    """`finharness leaderboard serve` started as a user starts it; yields its address."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "finharness", "leaderboard", "serve", "--board", str(board.path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"the app did not answer on {url}: {process.stdout.read().decode()[-2000:]}")
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
