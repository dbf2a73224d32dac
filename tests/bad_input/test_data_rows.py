"""Rows of a task's data: each bad row named by file, line and field."""
from tests.helpers.tasks import ALL_SPLITS, GOOD_BODY, ROWS, write_task

import pytest


def test_an_empty_text_is_refused_naming_the_row(tmp_path):
    from fin_tasks.common.validate import TaskYamlError, validate_file

    rows = {**ALL_SPLITS, "validation": ROWS[:1] + [{"id": "x", "text": "  \n", "label": "up"}]}
    with pytest.raises(TaskYamlError, match=r"data/validation\.jsonl:2: field 'text' is empty"):
        validate_file(write_task(tmp_path, GOOD_BODY, rows))


def test_the_packaged_data_has_no_empty_text():
    """FinCausal shipped 4 empty sentences; the build script now drops them after its shuffle."""
    from fin_tasks import TASKS_DIR
    from fin_tasks.common.data import read_jsonl

    for path in sorted(TASKS_DIR.glob("*/data/*.jsonl")):
        assert all(row["text"].strip() for row in read_jsonl(path)), path


def test_a_null_text_is_refused_naming_the_row(tmp_path):
    from fin_tasks.common.validate import TaskYamlError, validate_file

    rows = {**ALL_SPLITS, "test": ROWS[:2] + [{"id": "x", "text": None, "label": "up"}]}
    with pytest.raises(TaskYamlError, match=r"data/test\.jsonl:3: field\(s\) \['text'\] are null"):
        validate_file(write_task(tmp_path, GOOD_BODY, rows))


def test_non_utf8_data_names_file_line_and_byte(tmp_path):
    from fin_tasks.common.validate import TaskYamlError, validate_file

    path = write_task(tmp_path, GOOD_BODY, ALL_SPLITS)
    test = tmp_path / "data" / "test.jsonl"
    test.write_bytes(test.read_bytes() + '{"id": "z", "text": "caf\u00e9", "label": "up"}\n'.encode("latin-1"))
    with pytest.raises(TaskYamlError, match=r"data/test\.jsonl:7: not UTF-8 text \(byte 0xe9 at column 25\)"):
        validate_file(path)


@pytest.mark.parametrize("split", ["test", "validation"])
def test_an_empty_split_file_is_named_by_validate_and_eval(tmp_path, tiny_checkpoint, capsys, split):
    """D7: an empty test.jsonl gave an IndexError traceback in validate and eval."""
    from finharness.main import main

    write_task(tmp_path / "tasks" / "fin_demo", GOOD_BODY, {**ALL_SPLITS, split: []})
    assert main(["validate", "--include_path", str(tmp_path / "tasks")]) == 1
    assert f"data/{split}.jsonl: no rows" in capsys.readouterr().out
    assert main(["eval", "-m", str(tiny_checkpoint), "--include_path", str(tmp_path / "tasks"), "-t", "fin_demo",
                 "--chat_template", "off"]) == 2
    assert f"data/{split}.jsonl: no rows" in capsys.readouterr().err
