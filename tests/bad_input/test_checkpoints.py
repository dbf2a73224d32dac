"""Checkpoint folders: refused up front, before transformers unpickles anything or a stale
request cache answers for them."""
import shutil
from pathlib import Path

import pytest

from harness.evaluate import EvalRequest, run_eval
from finharness.main import main
from plumbing.checkpoints import CheckpointError, resolve_checkpoint


def pickle_beside_a_decoy(tiny_checkpoint: Path, folder: Path) -> Path:
    """A checkpoint folder whose real weights are a pickle, with a decoy safetensors file."""
    shutil.copytree(tiny_checkpoint, folder)
    (folder / "model.safetensors").rename(folder / "decoy.safetensors")
    (folder / "pytorch_model.bin").write_bytes(b"pickle bytes that would run code")
    return folder


def test_pickle_weights_are_refused_before_anything_loads_them(tiny_checkpoint, tmp_path):
    folder = pickle_beside_a_decoy(tiny_checkpoint, tmp_path / "decoy")
    with pytest.raises(CheckpointError, match=r"decoy: pickle weight file\(s\) pytorch_model\.bin; only safetensors"):
        run_eval(EvalRequest(model=str(folder), tasks=["fin_fpb"], limit=2, chat_template="off"))


def test_a_checkpoint_without_tokenizer_files_names_the_folder(tiny_checkpoint, tmp_path):
    folder = shutil.copytree(tiny_checkpoint, tmp_path / "no-tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(CheckpointError, match=r"no-tokenizer has no tokenizer files \(none of tokenizer\.json"):
        run_eval(EvalRequest(model=str(folder), tasks=["fin_fpb"], limit=2, chat_template="off"))


def test_checkpoint_that_does_not_exist(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint '.*nowhere' does not exist"):
        resolve_checkpoint(str(tmp_path / "nowhere"))


def test_checkpoint_without_safetensors_is_refused(tmp_path, tiny_checkpoint):
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_checkpoint, pickled)
    for weights in pickled.glob("*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(CheckpointError, match="no .safetensors weights"):
        resolve_checkpoint(str(pickled))


def test_eval_command_names_a_missing_checkpoint(tmp_path, capsys):
    assert main(["eval", "--model", str(tmp_path / "missing-model"), "--limit", "1"]) == 2
    assert "missing-model' does not exist" in capsys.readouterr().err
