"""Fingerprints and overlap flags kept on disk (plumbing/derived.py): a later process reads
what an earlier one derived, and an edited input can never be answered from an old entry."""
from __future__ import annotations

import json

import numpy as np
import pytest

import fin_tasks.common.decontamination as decontamination
from plumbing.derived import derived_dir, remembered_arrays
from plumbing.fingerprints import Fingerprint


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FINHARNESS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_a_value_is_derived_once_and_read_back_after(home):
    calls = []

    def compute():
        calls.append(1)
        return {"flags": np.array([True, False])}

    first = remembered_arrays("overlaps", "k1", compute)
    second = remembered_arrays("overlaps", "k1", compute)
    assert calls == [1] and second["flags"].tolist() == first["flags"].tolist() == [True, False]
    assert [p.name for p in derived_dir().iterdir()] == ["overlaps-k1.npz"]


def test_a_damaged_entry_is_derived_again_and_replaced(home):
    derived_dir().mkdir(parents=True)
    (derived_dir() / "overlaps-k1.npz").write_bytes(b"PK\x03\x04 half a file")
    got = remembered_arrays("overlaps", "k1", lambda: {"flags": np.array([False, True])})
    assert got["flags"].tolist() == [False, True]
    assert remembered_arrays("overlaps", "k1", lambda: pytest.fail("read back, not derived"))["flags"].tolist() \
        == [False, True]


def test_the_suite_fingerprint_read_back_is_the_one_computed_and_an_edited_test_split_gets_its_own(
        home, tmp_path, monkeypatch):
    folder = tmp_path / "tasks" / "fin_x"
    folder.mkdir(parents=True)
    rows = [{"text": "Profit rose by a quarter in the third quarter of the year"}, {"text": "Sales fell."}]
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(decontamination, "packaged_data_dirs", lambda: [folder])

    def fresh() -> Fingerprint:
        decontamination._suite_fingerprint.cache_clear()  # a new process
        return decontamination.suite_test_fingerprint()

    def same(a: Fingerprint, b: Fingerprint) -> bool:
        return a.arrays().keys() == b.arrays().keys() and all(
            np.array_equal(a.arrays()[k], b.arrays()[k]) for k in a.arrays())

    computed = Fingerprint.of([r["text"] for r in rows], ns=(8,))
    first, again = fresh(), fresh()
    assert same(first, computed) and same(again, computed) and again.key == first.key

    rows.append({"text": "A new test document the old fingerprint never saw, eight words long"})
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    edited = fresh()
    assert edited.key != first.key and same(edited, Fingerprint.of([r["text"] for r in rows], ns=(8,)))
    assert edited.overlaps([rows[-1]["text"]]).tolist() == [True] and first.overlaps([rows[-1]["text"]]).tolist() == [False]
