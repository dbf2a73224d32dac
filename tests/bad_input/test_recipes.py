"""Training and study recipes: refused before a run folder exists. (Study recipes that give
`seed` and `seeds` together: tests/test_study.py.)"""
import pytest

from training.recipe import RecipeError, parse_recipe


def test_an_infinite_epoch_count_is_refused_before_a_run_folder_exists(tiny_checkpoint, tmp_path):
    with pytest.raises(RecipeError, match=r"training\.epochs"):
        parse_recipe({"name": "r", "base_model": str(tiny_checkpoint), "output_dir": str(tmp_path / "runs"),
                      "tasks": [{"name": "fin_fpb", "samples": 4}], "training": {"epochs": float("inf")}})
    assert not (tmp_path / "runs").exists()


def test_an_unknown_key_is_named_not_ignored(tiny_checkpoint):
    with pytest.raises(RecipeError, match=r"<recipe>: training\.learning_rte: unknown key"):
        parse_recipe({"name": "r", "base_model": str(tiny_checkpoint), "tasks": [{"name": "fin_fpb"}],
                      "training": {"learning_rte": 1e-4}})
