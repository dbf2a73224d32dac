"""Where task data comes from: the packaged JSONL by default, the Hub only when asked and allowed."""
import time

import datasets
import pytest

from fin_tasks import HUB_TASKS_DIR, TASKS_DIR
from fin_tasks.common import data as task_data


def finben_style():
    # FinBen's schema: the label is choices[gold], choices in FinBen's own order and case.
    rows = [
        {"id": "ma0", "query": "...", "text": "Deal closed.", "choices": ["Complete", "Rumour"], "gold": 0},
        {"id": "ma1", "query": "...", "text": "Talks reported.", "choices": ["Complete", "Rumour"], "gold": 1},
    ]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def test_packaged_data_is_the_default(monkeypatch):
    monkeypatch.delenv("FINHARNESS_DATA", raising=False)
    called = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: called.append(a))
    splits = task_data.load(
        labels=["negative", "neutral", "positive"], hub_id="TheFinAI/flare-fpb",
        hub_splits={"test": "test"}, config_source=str(TASKS_DIR / "fpb" / "fin_fpb.yaml"),
    )
    assert called == [] and set(splits) == {"train", "validation", "test"}
    assert len(splits["test"]) == 970


def test_hub_only_task_maps_finben_schema_to_our_labels(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setattr(datasets, "load_dataset", lambda hub_id, name=None: finben_style())
    splits = task_data.load(
        labels=["complete", "rumour"], hub_id="TheFinAI/flare-ma", hub_splits={"test": "test"},
        config_source=str(HUB_TASKS_DIR / "ma" / "fin_ma.yaml"),
    )
    assert splits["test"]["label"] == ["complete", "rumour"]
    assert splits["test"]["gold"] == [0, 1]
    assert splits["test"]["choices"][0] == ["complete", "rumour"]


def test_hub_split_that_does_not_exist_is_named(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setattr(datasets, "load_dataset", lambda hub_id, name=None: finben_style())
    with pytest.raises(task_data.TaskDataError, match=r"TheFinAI/flare-ma: missing split 'valid'"):
        task_data.load_hub("TheFinAI/flare-ma", ["complete", "rumour"], {"validation": "valid"})


def test_offline_hub_task_fails_at_once_without_touching_the_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def network(*_a, **_k):
        raise AssertionError("the network must not be tried offline")

    monkeypatch.setattr(datasets, "load_dataset", network)
    start = time.perf_counter()
    with pytest.raises(task_data.DataUnavailable, match="TheFinAI/flare-ma is on the Hugging Face Hub"):
        task_data.load(labels=["complete", "rumour"], hub_id="TheFinAI/flare-ma",
                       hub_splits={"test": "test"}, config_source=str(HUB_TASKS_DIR / "ma" / "fin_ma.yaml"))
    assert time.perf_counter() - start < 1.0


def test_unknown_data_source_is_refused(monkeypatch):
    monkeypatch.setenv("FINHARNESS_DATA", "s3")
    with pytest.raises(ValueError, match="FINHARNESS_DATA must be 'packaged' or 'hub', not 's3'"):
        task_data.load(labels=["a"], config_source=str(TASKS_DIR / "fpb" / "fin_fpb.yaml"))


def test_loading_a_task_does_not_print_lm_evals_custom_dataset_notice(caplog):
    from fin_tasks.index import task_manager

    with caplog.at_level("WARNING"):
        task_manager().load(["fin_fpb", "gen_sentiment_amazon"])
    assert "Custom kwargs" not in caplog.text
