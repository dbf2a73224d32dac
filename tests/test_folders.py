"""One folder contract: temporary name, one typed manifest written last, rename."""
import json

import pytest

from plumbing.folders import FolderError, Manifest, finish, is_finished, read_manifest, scratch_dir


def test_a_folder_is_finished_only_once_its_manifest_is_written_and_it_is_renamed(tmp_path):
    final = tmp_path / "run"
    work = scratch_dir(final)
    (work / "model.safetensors").write_bytes(b"weights")
    assert not is_finished(final, "training_run") and not final.exists()  # a kill here leaves only .run.partial-<pid>
    assert work.name.startswith(".run.partial-")
    finish(work, final, "training_run", {"steps": 3, "instruct": True})
    assert not work.exists() and (final / "model.safetensors").read_bytes() == b"weights"
    manifest = read_manifest(final, "training_run")
    assert isinstance(manifest, Manifest) and manifest.data == {"steps": 3, "instruct": True}
    assert json.loads((final / "finharness.json").read_text())["kind"] == "training_run"


def test_a_folder_of_another_kind_is_named_not_misread(tmp_path):
    work = scratch_dir(tmp_path / "m")
    finish(work, tmp_path / "m", "merge", {"method": "ties"})
    with pytest.raises(FolderError, match=r"m is a finished merge, not a training run"):
        read_manifest(tmp_path / "m", "training_run")
    assert not is_finished(tmp_path / "m", "training_run") and is_finished(tmp_path / "m", "merge")


def test_folders_made_before_the_contract_still_read_as_finished(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "finharness_run.json").write_text(json.dumps({"steps": 7}))
    assert read_manifest(tmp_path / "old").kind == "training_run"
    assert read_manifest(tmp_path / "old", "training_run").data == {"steps": 7}
    assert read_manifest(tmp_path / "nothing") is None


def test_a_racing_writer_of_the_same_content_keeps_the_first_folder(tmp_path):
    first = scratch_dir(tmp_path / "copy")
    (first / "a").write_text("1")
    finish(first, tmp_path / "copy", "board_copy", {"n": 1}, replace=False)
    second = tmp_path / "second-work"
    second.mkdir()
    (second / "a").write_text("1")
    finish(second, tmp_path / "copy", "board_copy", {"n": 2}, replace=False)
    assert read_manifest(tmp_path / "copy").data == {"n": 1} and not second.exists()
