"""Honest results folders the catalogue forges copies of (built once per session)."""
import pytest

from harness.evaluate import EvalRequest, run_eval
from tests.helpers.checkpoints import build_tiny_checkpoint


@pytest.fixture(scope="session")
def five_docs(tmp_path_factory):
    """An honest `finharness eval --limit 5` folder on a tiny model (a seeded, stratified slice)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    model = build_tiny_checkpoint(root / "model")
    out = root / "eval"
    run_eval(EvalRequest(model=str(model), tasks=["fin_fpb"], limit=5, batch_size=8, chat_template="off",
                         output_path=out))
    return out


@pytest.fixture(scope="session")
def first_five(tmp_path_factory):
    """The same with lm-eval's own --limit (the first five documents)."""
    root = tmp_path_factory.mktemp("bad-inputs-first")
    model = build_tiny_checkpoint(root / "model")
    run_eval(EvalRequest(model=str(model), tasks=["fin_fpb"], limit=5, sample="first", chat_template="off",
                         output_path=root / "eval"))
    return root / "eval"


@pytest.fixture(scope="session")
def three_shots(tmp_path_factory):
    """An honest `finharness eval --limit 5 --num_fewshot 3` folder (a stratified slice)."""
    root = tmp_path_factory.mktemp("bad-inputs-shots")
    model = build_tiny_checkpoint(root / "model")
    run_eval(EvalRequest(model=str(model), tasks=["fin_fpb"], limit=5, num_fewshot=3, batch_size=8,
                         chat_template="off", output_path=root / "eval"))
    return root / "eval"
