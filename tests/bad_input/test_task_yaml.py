"""Bad task YAMLs and data folders get errors that name the file, field, row or value."""

import json

import pytest

from fin_tasks import TASKS_DIR
from fin_tasks.common.data import TaskDataError, load
from fin_tasks.common.validate import TaskYamlError, validate_file, validate_paths
from finharness.main import main
from tests.helpers.tasks import ALL_SPLITS, GOOD_BODY, ROWS, write_task

TEMPLATE = TASKS_DIR / "_multiple_choice_yaml"


def test_packaged_suite_is_valid():
    rows, errors = validate_paths([TASKS_DIR])
    assert errors == []
    assert {r["name"] for r in rows} >= {"fin_fpb", "generative_fin_fpb", "finharness_all"}


def test_a_good_drop_in_task_validates(tmp_path):
    row = validate_file(write_task(tmp_path, GOOD_BODY, ALL_SPLITS))
    assert row["splits"] == {"train": 6, "validation": 6, "test": 6}
    assert row["labels"] == ["down", "up"]


def test_unparseable_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "fin_bad.yaml"
    path.write_text("task: fin_bad\ndoc_to_text: [unclosed\n")
    with pytest.raises(TaskYamlError, match=r"fin_bad\.yaml:\d+: not valid YAML"):
        validate_file(path)


def test_missing_include_is_reported(tmp_path):
    path = tmp_path / "fin_bad.yaml"
    path.write_text("include: _no_such_template_yaml\ntask: fin_bad\n")
    with pytest.raises(TaskYamlError, match="include not found"):
        validate_file(path)


def test_unknown_field_is_named(tmp_path):
    path = write_task(tmp_path, GOOD_BODY + "metric_lists: []\n", ALL_SPLITS)
    with pytest.raises(TaskYamlError, match=r"fin_demo\.yaml: unknown task field\(s\) \['metric_lists'\]"):
        validate_file(path)


def test_label_outside_label_set_names_row_and_value(tmp_path):
    bad = ROWS[:3] + [{"id": "x", "text": "gold", "label": "sideways"}]
    path = write_task(tmp_path, GOOD_BODY, {"train": ROWS, "validation": ROWS, "test": bad})
    with pytest.raises(TaskYamlError, match=r"test\.jsonl:4: label 'sideways' is not in the task's label set"):
        validate_file(path)


def test_missing_split_names_the_field(tmp_path):
    path = write_task(tmp_path, GOOD_BODY, {"train": ROWS, "test": ROWS})
    with pytest.raises(TaskYamlError, match="field validation_split names split 'validation', which the data does not have"):
        validate_file(path)


def test_missing_test_split_file(tmp_path):
    path = write_task(tmp_path, GOOD_BODY, {"train": ROWS})
    with pytest.raises(TaskYamlError, match="missing split 'test'"):
        validate_file(path)


def test_misspelt_prompt_field_is_caught(tmp_path):
    path = write_task(tmp_path, GOOD_BODY.replace("{{text}}", "{{txt}}"), ALL_SPLITS)
    with pytest.raises(TaskYamlError, match="doc_to_text does not render.*txt"):
        validate_file(path)


def test_choices_must_match_declared_labels(tmp_path):
    body = GOOD_BODY.replace("doc_to_choice: *labels", "doc_to_choice: [up, down]")
    with pytest.raises(TaskYamlError, match="doc_to_choice must equal dataset_kwargs.labels"):
        validate_file(write_task(tmp_path, body, ALL_SPLITS))


def test_invalid_json_row(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "test.jsonl").write_text('{"text": "a", "label": "up"}\n{"text": broken\n')
    with pytest.raises(TaskDataError, match=r"test\.jsonl:2: not valid JSON"):
        load(labels=["down", "up"], data_dir=str(folder))


def test_validate_command_reports_every_bad_file_and_fails(tmp_path, capsys):
    good = write_task(tmp_path / "good", GOOD_BODY, ALL_SPLITS)
    bad = tmp_path / "bad" / "fin_bad.yaml"
    bad.parent.mkdir()
    bad.write_text("task: fin_bad\nnot_a_field: 1\n")
    assert main(["validate", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "ok     fin_demo" in out and "unknown task field(s) ['not_a_field']" in out
    assert "1 valid, 1 invalid" in out


@pytest.mark.parametrize("metric", ["f1_macroo", "recall"])  # a typo; a metric the task never makes
def test_a_metric_the_task_does_not_produce_is_named(tmp_path, metric):
    from fin_tasks.common.validate import TaskYamlError, validate_file

    body = GOOD_BODY + f"metric_list:\n  - metric: acc\n    aggregation: mean\n  - metric: {metric}\n    aggregation: mean\n"
    with pytest.raises(TaskYamlError, match=rf"fin_demo\.yaml: field metric_list names \['{metric}'\], which its "
                                            r"process_results \(process_results_mc_both\) does not produce"):
        validate_file(write_task(tmp_path, body, ALL_SPLITS))


def test_a_yml_file_is_named_not_skipped(tmp_path):
    from fin_tasks.common.validate import validate_paths

    path = write_task(tmp_path, GOOD_BODY, ALL_SPLITS)
    path.rename(path.with_suffix(".yml"))
    _, errors = validate_paths([tmp_path])
    assert errors == [f"{tmp_path / 'fin_demo.yml'}: lm-eval only reads task files ending in .yaml; "
                      "rename it to fin_demo.yaml"]


def test_eval_runs_validates_checks_on_an_include_path_before_scoring(tmp_path, tiny_checkpoint, capsys):
    """A misspelt metric used to score every document, then crash with a TypeError."""
    body = GOOD_BODY + "metric_list:\n  - metric: acc\n    aggregation: mean\n  - metric: f1_macroo\n    aggregation: mean\n"
    write_task(tmp_path / "mine", body, ALL_SPLITS)
    out = tmp_path / "out"
    assert main(["eval", "-m", str(tiny_checkpoint), "--include_path", str(tmp_path / "mine"), "-t", "fin_demo",
                 "-o", str(out)]) == 2
    assert "fin_demo.yaml: field metric_list names ['f1_macroo']" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("name", ["fin_demo\u202e", "fin\x1b[31mdemo", "fin demo"])
def test_a_task_name_that_does_not_print_as_written_is_refused(tmp_path, name):
    """X8: task names with bidi overrides or ANSI escapes passed validate and printed raw."""
    path = write_task(tmp_path, GOOD_BODY, ALL_SPLITS)
    path.write_text(path.read_text().replace("task: fin_demo", f"task: {json.dumps(name)}"))
    with pytest.raises(TaskYamlError, match=r"field task .* is not a plain name"):
        validate_file(path)
