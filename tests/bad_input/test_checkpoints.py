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


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], r"model\.safetensors: truncated \([\d,]+ bytes; its tensors need [\d,]+\); copy it again"),
    (lambda b: b[:5], r"model\.safetensors: not a whole safetensors file"),
    # E8: a header that claims 2**40 bytes is refused without reading (or allocating) them.
    (lambda b: (2 ** 40).to_bytes(8, "little") + b[8:], r"its header claims 1099511627776 bytes"),
    (lambda b: b[:8] + b"[" + b[9:], r"its safetensors header is not JSON"),
])
def test_a_damaged_safetensors_file_is_named_before_anything_loads(tiny_checkpoint, tmp_path, capsys, damage, message):
    """E7/E8: a truncated copy gave SafetensorError tracebacks naming no file."""
    folder = shutil.copytree(tiny_checkpoint, tmp_path / "damaged")
    weights = folder / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(CheckpointError, match=message):
        resolve_checkpoint(str(folder))
    assert main(["eval", "-m", str(folder), "-t", "fin_fpb", "--limit", "1", "--chat_template", "off"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(weights) in err[0], err
