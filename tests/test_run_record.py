"""Every run of a study stays on the record: a rerun's claims table lists the runs before it.

The shipped Study B packs are three runs of one study on the same test documents (lr 2e-3;
then lr 2e-5 for every run; then its XSum rows rerun at 2e-4 under the same lock). Rebuilt
from their logs, each claims table lists the other two with their verdicts.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from study.claims import preregistration_note, read_lock, record_claims
from study.record import RUN_FILE, RunRecord, next_run_number, others, record_section, runs_on_record, write_run

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "docs" / "results"
STUDY_B = ["ft-generalization", "ft-generalization-lr2e-3", "ft-generalization-xsum-lr2e-5"]


def record(evidence: str, recorded: str | None, verdict: str, documents: str = "d1", **more) -> RunRecord:
    return RunRecord(study="s", full=False, recorded=recorded, rules="2026-12-07", documents=documents,
                     evidence=evidence, verdicts={"C1": verdict}, **more)


def test_each_shipped_study_b_run_is_on_the_record_with_its_verdicts():
    runs = {Path(r.where).name: r for r in runs_on_record("ft-generalization", False, SHIPPED)}
    assert sorted(runs) == STUDY_B
    assert len({r.documents for r in runs.values()}) == 1  # the same test documents, three times
    assert runs["ft-generalization-lr2e-3"].verdicts["B1-classification-generalizes"] == "contradicts"
    assert runs["ft-generalization"].verdicts["B1-classification-generalizes"] == "agrees"
    # The main run reran the XSum rows of the lr 2e-5 run under that run's lock.
    assert runs["ft-generalization"].recorded == runs["ft-generalization-xsum-lr2e-5"].recorded
    assert runs["ft-generalization"].evidence != runs["ft-generalization-xsum-lr2e-5"].evidence


def test_a_rebuilt_run_lists_the_other_runs_and_the_lock_they_share(tmp_path, monkeypatch):
    from finharness.main import main

    monkeypatch.chdir(REPO)  # the record is docs/results/ under the working folder, as `study pack` writes it
    assert main(["study", "table", "recipes/studies/ft-generalization", "--from",
                 str(SHIPPED / "ft-generalization" / "logs.tar.gz"), "--output_path", str(tmp_path)]) == 0
    tables = (tmp_path / "ft-generalization" / "tables.md").read_text()
    section = tables.split("### Every run on record")[1].split("## Tables")[0]
    lines = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [line.split("|")[2].strip() for line in lines] == [
        "ft-generalization-lr2e-3", "ft-generalization-xsum-lr2e-5 (same lock)", "this run"]
    assert all(line.split("|")[6].strip() == "same" for line in lines)
    assert "contradicts" in lines[0]  # the lr 2e-3 run's B1, in view of the rerun that agrees
    assert "share this run's lock" in section
    assert json.loads((tmp_path / "ft-generalization" / RUN_FILE).read_text()) == json.loads(
        (SHIPPED / "ft-generalization" / RUN_FILE).read_text())


def test_a_new_run_is_numbered_after_the_runs_on_record(tmp_path):
    shelf = tmp_path / "docs" / "results"
    assert next_run_number("s", False, shelf) == 1
    for i, name in enumerate(["first", "second"]):
        (shelf / name).mkdir(parents=True)
        write_run(shelf / name, record(f"e{i}", f"2026-12-0{i + 1}T00:00:00Z", "agrees"))
    assert next_run_number("s", False, shelf) == 3
    assert next_run_number("s", True, shelf) == 1  # the papers' sizes are another study

    folder, root = tmp_path / "study", tmp_path / "out"
    folder.mkdir()
    root.mkdir()
    (folder / "claims.yaml").write_text("claims: []\n")
    record_claims(folder, root, next_run_number("s", False, shelf))
    assert read_lock(root)["run"] == 3
    assert "This is run 3 of this study: 2 earlier run(s)" in preregistration_note(folder, root)


def test_the_list_marks_this_run_and_which_runs_scored_other_documents(tmp_path):
    shelf = tmp_path / "results"
    (shelf / "old").mkdir(parents=True)
    write_run(shelf / "old", record("e0", "2026-12-01T00:00:00Z", "inconclusive", documents="d0",
                                    readings={"C1": "not read"}))
    this = record("e1", "2026-12-05T00:00:00Z", "agrees")
    text = record_section(this, others(this, shelf), shelf)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert "old" in rows[0] and "other" in rows[0] and "inconclusive [not read]" in rows[0]
    assert "this run" in rows[1] and "same" in rows[1] and "agrees" in rows[1]
    # The run being tabulated is never listed as its own predecessor.
    write_run(shelf / "old", record("e1", "2026-12-05T00:00:00Z", "agrees"))
    assert others(this, shelf) == []
    assert "the only run" in record_section(this, [], shelf)


@pytest.mark.parametrize("content, named", [
    ("[1, 2]", "a JSON object"),
    ('{"study": "s", "rules": "r", "documents": "d", "evidence": "e", "verdicts": {"C1": 3}, "readings": {}}',
     "'verdicts'"),
    ('{"study": "s", "rules": "r", "documents": "d", "evidence": "e", "verdicts": {}, "readings": {}, "run": 0}',
     "'run'"),
    ('{"study": "s", "rules": "r", "documents": "d", "verdicts": {}, "readings": {}}', "'evidence'"),
    ("{not json", "not a run record"),
])
def test_a_malformed_run_file_is_named_with_its_field(tmp_path, content, named):
    shelf = tmp_path / "results"
    (shelf / "bad").mkdir(parents=True)
    (shelf / "bad" / RUN_FILE).write_text(content)
    with pytest.raises(ValueError, match=named) as err:
        runs_on_record("s", False, shelf)
    assert str(shelf / "bad" / RUN_FILE) in str(err.value)


def test_the_shipped_packs_copy_of_the_record_matches_what_pack_writes(tmp_path):
    """`study pack` copies run.json beside the logs; a shipped folder without one is not on the record."""
    for name in STUDY_B + ["fin-instruct-merge"]:
        assert (SHIPPED / name / RUN_FILE).is_file(), name
    shutil.copytree(SHIPPED / "fin-instruct-merge", tmp_path / "a")
    (tmp_path / "a" / RUN_FILE).unlink()
    assert runs_on_record("fin-instruct-merge", False, tmp_path) == []
