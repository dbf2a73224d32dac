"""Every packaged task loads offline through lm-eval, renders its prompt, and has gold labels in range."""
import fnmatch

import pytest
from lm_eval.tasks import TaskManager

from fin_tasks import HUB_TASKS_DIR, TASKS_DIR
from harness.evaluate import plan_tasks

SEEN = ["fin_fpb", "fin_fiqa_sa", "fin_tfns", "fin_headlines", "fin_finred", "fin_fomc"]
UNSEEN = ["fin_finarg_auc", "fin_fincausal"]
PACKAGED = [prefix + name for name in SEEN + UNSEEN for prefix in ("", "generative_")]
LABELS = {
    "fin_fpb": 3, "fin_fiqa_sa": 3, "fin_tfns": 3, "fin_headlines": 3,
    "fin_finred": 29, "fin_fomc": 3, "fin_finarg_auc": 2, "fin_fincausal": 2,
}


@pytest.fixture(scope="module")
def manager():
    return TaskManager(include_path=str(TASKS_DIR), include_defaults=False)


@pytest.fixture(scope="module")
def loaded(manager):
    return manager.load(PACKAGED)["tasks"]


def test_wildcard_fin_matches_the_classification_tasks_and_no_group_or_twin(manager):
    assert manager.match_tasks(["fin_*"]) == sorted(SEEN + UNSEEN)
    assert manager.match_tasks(["generative_fin_*"]) == sorted("generative_" + t for t in SEEN + UNSEEN)
    # gen_* is the generalization suite only: no generative twin answers to it.
    assert not [t for t in manager.match_tasks(["gen_*"]) if "fin" in t]
    groups = [n for n in manager.all_groups if n.startswith("finharness_")]
    formats = ("", "_generative", "_alpaca", "_label", "_generative_alpaca", "_generative_label")
    assert sorted(groups) == sorted(
        [f"finharness_{g}{k}" for g in ("seen", "unseen", "all") for k in formats] + ["finharness_retention"])
    assert not fnmatch.filter(groups, "fin_*")


@pytest.mark.parametrize("name", PACKAGED)
def test_task_renders_and_gold_in_range(loaded, name):
    task = loaded[name]
    base = name.removeprefix("generative_")
    docs = list(task.test_docs())
    assert len(docs) >= 200
    choices = task.doc_to_choice(docs[0])
    assert len(choices) == LABELS[base]
    for doc in docs:
        assert 0 <= task.doc_to_target(doc) < len(choices)
        assert doc["choices"][doc["gold"]] == doc["label"]
    prompt = task.doc_to_text(docs[0])
    assert docs[0]["text"] in prompt and prompt.endswith("Answer:")
    # Few-shot examples exist and come from the validation split, not test.
    assert task.config.fewshot_split == "validation" and len(task.fewshot_docs()) > 0
    # Every class appears in the packaged test split.
    assert {d["gold"] for d in docs} == set(range(len(choices)))


def test_generative_twin_limits_output_to_five_tokens(loaded):
    for name in PACKAGED:
        if name.startswith("generative_"):
            assert loaded[name].config.generation_kwargs["max_gen_toks"] == 5
            assert loaded[name].config.output_type == "generate_until"
        else:
            assert loaded[name].config.output_type == "multiple_choice"


def test_finred_prompt_names_the_entities(loaded):
    doc = loaded["fin_finred"].test_docs()[0]
    prompt = loaded["fin_finred"].doc_to_text(doc)
    assert f"Head: {doc['head']}\nTail: {doc['tail']}" in prompt
    assert "'product/material produced'" in prompt and "and 'creator'" in prompt


def test_groups_split_seen_from_unseen(manager):
    # Members come from the role tag each task declares (sorted by lm-eval's tag index).
    loaded = manager.load(["finharness_seen", "finharness_unseen"])
    assert loaded["group_map"] == {"finharness_seen": sorted(SEEN), "finharness_unseen": sorted(UNSEEN)}


def test_hub_only_task_is_skipped_offline_with_a_reason():
    include, skipped = plan_tasks(["fin_*", "generative_fin_*"], online=False)
    assert include == [TASKS_DIR]
    assert set(skipped) == {"fin_ma", "generative_fin_ma"}
    assert "offline" in skipped["fin_ma"]
    include, skipped = plan_tasks(["fin_*"], online=True)
    assert include == [TASKS_DIR, HUB_TASKS_DIR] and skipped == {}


def test_task_selection_refuses_unknown_names_and_drops_skipped_ones():
    from harness.evaluate import select_tasks

    known = ["fin_fpb", "generative_fin_fpb", "finharness_all"]
    skipped = {"fin_ma": "offline", "generative_fin_ma": "offline"}
    # Patterns are expanded by lm-eval's own matcher: fin_* is the classification tasks only.
    assert select_tasks(["fin_*", "fin_ma"], known, skipped) == ["fin_fpb"]
    assert select_tasks(["finharness_all"], known, skipped) == ["finharness_all"]
    with pytest.raises(ValueError, match=r"no task, group or tag matches 'fin_fbp' \(did you mean: fin_fpb"):
        select_tasks(["fin_fbp"], known, skipped)
    with pytest.raises(ValueError, match="matched only tasks skipped offline"):
        select_tasks(["fin_ma*"], known, skipped)


def test_the_suite_is_validated_once_per_change_of_its_files(tmp_path, monkeypatch):
    """`finharness eval` starts by validating every YAML; the packaged suite's rows are kept in the
    cache until one of its files (or the validating code) changes; a user folder is always checked."""
    import os

    from fin_tasks import HUB_TASKS_DIR, TASKS_DIR
    from fin_tasks.common import validate
    from tests.helpers.tasks import ALL_SPLITS, GOOD_BODY, write_task

    monkeypatch.setenv("FINHARNESS_HOME", str(tmp_path / "home"))
    expected = validate.validate_paths([TASKS_DIR, HUB_TASKS_DIR], with_data=False)
    assert validate.validate_with_suite([]) == expected
    mine = tmp_path / "mine"
    write_task(mine, GOOD_BODY, ALL_SPLITS)
    calls = []
    real = validate.validate_paths
    monkeypatch.setattr(validate, "validate_paths", lambda paths, **kw: calls.append(list(paths)) or real(paths, **kw))
    rows, errors = validate.validate_with_suite([mine])
    assert errors == [] and rows[-1]["name"] == "fin_demo" and calls == [[mine]]  # the suite came from the cache
    touched = TASKS_DIR / "_multiple_choice_yaml"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    try:
        validate.validate_with_suite([])
        assert calls[-1] == [TASKS_DIR, HUB_TASKS_DIR]  # a changed file: validated again
    finally:
        os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (mine / "fin_demo.yaml").write_text((mine / "fin_demo.yaml").read_text().replace("task: fin_demo", "task: fin_fpb"))
    _, errors = validate.validate_with_suite([mine])
    assert errors and "name 'fin_fpb' is already defined in" in errors[0]


def test_tasks_lists_the_suites_sizes_from_the_cache_and_keeps_its_roles_beside_a_broken_folder(
        tmp_path, monkeypatch, capsys):
    """`finharness tasks` reads every data file once per change of the suite's files (data
    included); a user folder with an invalid YAML is reported, and the suite keeps its roles."""
    import os

    from fin_tasks import TASKS_DIR
    from fin_tasks.common import validate
    from finharness.main import main
    from tests.helpers.tasks import ALL_SPLITS, GOOD_BODY, write_task

    monkeypatch.setenv("FINHARNESS_HOME", str(tmp_path / "home"))
    assert main(["tasks"]) == 0
    first = capsys.readouterr().out
    fpb = next(line for line in first.splitlines() if line.startswith("| fin_fpb "))
    assert [c.strip() for c in fpb.strip("|").split("|")][2:5] == ["seen", "3", "970"]
    calls = []
    real = validate.validate_paths
    monkeypatch.setattr(validate, "validate_paths", lambda paths, **kw: calls.append(list(paths)) or real(paths, **kw))
    assert main(["tasks"]) == 0 and capsys.readouterr().out == first and calls == []  # from the cache
    data = TASKS_DIR / "fpb" / "data" / "test.jsonl"
    stamp, stat = validate._suite_stamp(True), data.stat()
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    try:
        assert validate._suite_stamp(True) != stamp  # a changed data file: sized again
    finally:
        os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    mine = tmp_path / "mine"
    write_task(mine, GOOD_BODY.replace("dataset_kwargs:", "dataset_kwargs: [\n"), ALL_SPLITS)
    assert main(["tasks", "--include_path", str(mine)]) == 1
    out, err = capsys.readouterr()
    assert fpb in out.splitlines() and "fin_demo.yaml" in err


def test_a_task_data_folder_is_read_once_per_process_until_a_file_changes(tmp_path, monkeypatch):
    """One `finharness eval` loads each task four times (slice, lm-eval, slice record,
    baselines); the rows are read from disk once, and again after an edit."""
    import json

    from fin_tasks.common import data
    from tests.helpers.tasks import ALL_SPLITS, GOOD_BODY, ROWS, write_task

    source = str(write_task(tmp_path / "mine", GOOD_BODY, ALL_SPLITS))
    reads = []
    real = data.read_jsonl
    monkeypatch.setattr(data, "read_jsonl", lambda path, *a: reads.append(path.name) or real(path, *a))
    first = data.load(labels=["down", "up"], config_source=source)
    assert data.load(labels=["down", "up"], config_source=source) is first
    assert sorted(reads) == ["test.jsonl", "train.jsonl", "validation.jsonl"]
    test_file = tmp_path / "mine" / "data" / "test.jsonl"
    test_file.write_text("".join(json.dumps({**r, "text": "edited"}) + "\n" for r in ROWS[:4]))
    again = data.load(labels=["down", "up"], config_source=source)
    assert len(reads) == 6 and again["test"]["text"] == ["edited"] * 4
