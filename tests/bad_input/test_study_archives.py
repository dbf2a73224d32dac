"""Study archives (`finharness study table --from`), issue 48 S7-S18: an archive is data. Each bad
one is refused with one line naming the archive (and the member), before any table is written."""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from finharness.main import main

REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "recipes" / "studies" / "ft-generalization"
SHIPPED = REPO / "docs" / "results" / "ft-generalization" / "logs.tar.gz"
OTHER = REPO / "docs" / "results" / "fin-instruct-merge" / "logs.tar.gz"


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def archive_of(found: dict[str, bytes], path: Path, compress: bool = True) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in found.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue()) if compress else buffer.getvalue())
    return path


def table_from(archive: Path, out: Path, capsys) -> tuple[int, str]:
    code = main(["study", "table", str(STUDY), "--from", str(archive), "--output_path", str(out)])
    return code, capsys.readouterr().err.strip()


def refused(archive: Path, tmp_path: Path, capsys, message: str) -> None:
    code, err = table_from(archive, tmp_path / "out", capsys)
    assert code == 2 and len(err.splitlines()) == 1 and str(archive) in err and message in err, err
    assert not list((tmp_path / "out").rglob("tables.*"))


def test_a_git_lfs_pointer_is_named_as_one(tmp_path, capsys):  # S8
    pointer = tmp_path / "logs.tar.gz"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 716800\n")
    refused(pointer, tmp_path, capsys, "a Git LFS pointer, not the archive (run `git lfs pull`)")


@pytest.mark.parametrize("make", [
    lambda: SHIPPED.read_bytes()[: SHIPPED.stat().st_size // 2],  # S10: truncated
    lambda: gzip.compress(os.urandom(4096)),  # S9: gzip of random bytes
    lambda: os.urandom(4096),  # not gzip at all
])
def test_a_broken_archive_is_named_not_a_traceback(tmp_path, capsys, make):
    archive = tmp_path / "logs.tar.gz"
    archive.write_bytes(make())
    refused(archive, tmp_path, capsys, "not a whole `finharness study pack` archive")


def test_a_plain_tar_is_named(tmp_path, capsys):  # S11
    archive = archive_of(members(SHIPPED), tmp_path / "logs.tar.gz", compress=False)
    refused(archive, tmp_path, capsys, "not a whole `finharness study pack` archive (a gzip-compressed tar)")


def test_a_member_that_expands_past_the_caps_is_refused_before_it_is_read(tmp_path, capsys):  # S7
    found = members(SHIPPED)
    name = next(n for n in found if n.endswith("finharness.json"))
    found[name] = b"\0" * (65 << 20)  # 65 MiB of zeros: a 64 KiB member once compressed
    archive = archive_of(found, tmp_path / "logs.tar.gz")
    assert archive.stat().st_size < 1 << 20
    refused(archive, tmp_path, capsys, f"member {name!r} (68,157,440 bytes) takes the archive past its caps")


def test_a_member_pack_never_writes_is_refused(tmp_path, capsys):
    found = {**members(SHIPPED), "evals/run.sh": b"rm -rf ~\n"}
    refused(archive_of(found, tmp_path / "logs.tar.gz"), tmp_path, capsys,
            "member 'evals/run.sh' is not one `finharness study pack` writes")


@pytest.mark.parametrize("source", ["empty", "another study"])
def test_an_archive_with_no_evaluation_of_this_study_is_refused(tmp_path, capsys, source):  # S13, S14
    archive = archive_of({}, tmp_path / "logs.tar.gz") if source == "empty" else OTHER
    refused(archive, tmp_path, capsys, "holds no finished evaluation of the study")


def test_an_archive_run_under_another_recipe_is_refused_naming_the_file(tmp_path, capsys):  # S15
    found = members(SHIPPED)
    for path in STUDY.glob("*.y*ml"):
        found[f"study/{path.name}"] = path.read_bytes()
    found["study/train.yaml"] = found["study/train.yaml"].replace(b"lr: 2.0e-4", b"lr: 2.0e-3")
    assert found["study/train.yaml"] != (STUDY / "train.yaml").read_bytes()
    refused(archive_of(found, tmp_path / "logs.tar.gz"), tmp_path, capsys,
            f"was run under another train.yaml than {STUDY / 'train.yaml'}")


def test_rows_whose_metrics_contradict_their_responses_are_refused(tmp_path, capsys):  # S16
    found = members(SHIPPED)
    name = next(n for n in sorted(found) if "samples_gen_sentiment_amazon_mc_" in n)
    rows = [json.loads(line) for line in found[name].decode().splitlines()]
    rows[0]["acc"] = 1.0 - rows[0]["acc"]  # the answer the logged log-likelihoods do not give
    found[name] = "".join(json.dumps(r) + "\n" for r in rows).encode()
    refused(archive_of(found, tmp_path / "logs.tar.gz"), tmp_path, capsys,
            f"doc {rows[0]['doc_id']}: acc is logged as {rows[0]['acc']!r}, but its responses score")


def test_a_malformed_claims_lock_is_named(tmp_path, capsys):  # S18
    found = {**members(SHIPPED), "claims.lock.json": b"{not json"}
    code, err = table_from(archive_of(found, tmp_path / "logs.tar.gz"), tmp_path / "out", capsys)
    assert code == 2 and "claims.lock.json: not a claims lock" in err, err


def test_an_archive_holding_a_member_twice_is_refused(tmp_path, capsys):
    """A second copy of a member would silently replace the first on extraction."""
    found = members(SHIPPED)
    name = next(n for n in found if n.endswith("finharness.json"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member, data in [*found.items(), (name, b"{}")]:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "logs.tar.gz"
    archive.write_bytes(gzip.compress(buffer.getvalue()))
    refused(archive, tmp_path, capsys, f"member {name!r} appears twice")
