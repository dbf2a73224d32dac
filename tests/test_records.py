"""The records between packages are declared once (evidence/records.py) and read only through it.

What a real evaluation and a real submission write is checked key by key where those tests
run them (tests/helpers/records.py ``undeclared``: test_baselines, test_contamination,
test_generalization, test_held_out_task, test_leaderboard); here, the code that reads them.
"""
import re
from pathlib import Path

import pytest

from evidence.records import EntryMetadata, RunRecord, declared_keys, entry_metadata, run_record
from leaderboard.submission import Submission
from tests.helpers.records import undeclared

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("plumbing", "fin_tasks", "evidence", "harness", "training", "merges", "leaderboard", "study", "finharness")


def shipped_code() -> dict[str, str]:
    return {str(p.relative_to(REPO)): p.read_text() for package in SHIPPED for p in sorted((REPO / package).rglob("*.py"))}


def test_only_the_records_module_spells_the_results_block_key():
    raw = sorted(path for path, text in shipped_code().items()
                 if re.search(r"""\[["']finharness["']\]|\.get\(["']finharness["']""", text))
    assert raw == []


def test_every_key_the_code_reads_is_declared():
    reads = {RunRecord: r"""run_record\([^()]*(?:\([^()]*\))?[^()]*\)(?:\.get\(|\[)["'](\w+)["']""",
             EntryMetadata: r"""\.metadata(?:\.get\(|\[)["'](\w+)["']"""}
    for record, pattern in reads.items():
        found = {(path, key) for path, text in shipped_code().items() for key in re.findall(pattern, text)}
        assert len(found) >= 8, record  # the pattern still finds the readers
        assert sorted((path, key) for path, key in found if key not in declared_keys(record)) == []


def test_a_submission_field_is_an_entry_metadata_key():
    """The board keeps the submission as accepted: a new Submission field must be declared."""
    assert set(Submission.model_fields) <= declared_keys(EntryMetadata)


def test_results_lm_eval_wrote_alone_have_an_empty_record_and_a_broken_one_is_named():
    assert run_record({"results": {}}) == {}
    with pytest.raises(ValueError, match="'finharness' is list, not an object"):
        run_record({"finharness": []})
    with pytest.raises(ValueError, match="entry metadata is str"):
        entry_metadata("{}")


def test_undeclared_finds_a_key_at_any_depth():
    record = {"model": "m", "slice": {"limit": 5, "sorted_by": "x"}, "baselines": {"fin_fpb": {"docs": 3, "oops": 1}},
              "added_later": True}
    assert undeclared(record, RunRecord) == ["slice.sorted_by", "baselines.fin_fpb.oops", "added_later"]
