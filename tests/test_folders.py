"""One folder contract: temporary name, one typed manifest written last, rename."""
import json

import pytest

from plumbing.folders import FolderError, Manifest, building, finish, is_finished, read_manifest, scratch_dir


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
    finish(first, tmp_path / "copy", "board_copy", {"source": "first"}, replace=False)
    second = tmp_path / "second-work"
    second.mkdir()
    (second / "a").write_text("1")
    finish(second, tmp_path / "copy", "board_copy", {"source": "second"}, replace=False)
    assert read_manifest(tmp_path / "copy").data == {"source": "first"} and not second.exists()


def test_building_keeps_a_folder_only_when_its_block_ends_with_a_record(tmp_path):
    with building(tmp_path / "merge", "merge") as build:
        (build.path / "model.safetensors").write_bytes(b"w")
        build.record = {"method": "ties", "route": "mergekit"}
    assert read_manifest(tmp_path / "merge", "merge").data == {"method": "ties", "route": "mergekit"}

    with pytest.raises(RuntimeError, match="killed"):
        with building(tmp_path / "failed", "merge") as build:
            (build.path / "half.safetensors").write_bytes(b"w")
            raise RuntimeError("killed half-way")
    with pytest.raises(FolderError, match=r"ended without a record; nothing was kept"):
        with building(tmp_path / "forgot", "evaluation") as build:
            (build.path / "results.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merge"]  # no folder, no scratch left


def test_a_manifest_record_with_a_misspelt_or_mistyped_field_is_refused(tmp_path):
    with pytest.raises(FolderError, match=r"merge manifest: .*metod"):
        finish(scratch_dir(tmp_path / "m"), tmp_path / "m", "merge", {"metod": "ties"})
    with pytest.raises(FolderError, match=r"training run manifest: .*steps"):
        finish(scratch_dir(tmp_path / "r"), tmp_path / "r", "training_run", {"steps": "many"})
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()
