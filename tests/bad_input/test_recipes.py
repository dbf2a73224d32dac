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


@pytest.mark.parametrize("section, field, value", [
    ("lora", "alpha", float("inf")),          # T5
    ("training", "lr", 1e308),                # T6: finite, but no run survives it
    ("training", "weight_decay", float("inf")),  # T7
    ("training", "max_grad_norm", float("nan")),
])
def test_a_field_no_run_survives_is_refused_by_name(tiny_checkpoint, section, field, value):
    with pytest.raises(RecipeError, match=rf"{section}\.{field}"):
        parse_recipe({"name": "r", "base_model": str(tiny_checkpoint), "tasks": [{"name": "fin_fpb"}],
                      section: {field: value}})


@pytest.mark.parametrize("training, message", [
    # T2: one optimizer step, the warmup's first, at learning rate 0.
    ({"epochs": 1e-9, "batch_size": 8}, r"training\.epochs 1e-09 gives 1 optimizer step, taken at learning rate 0"),
    # T3: one step would need 1,000 micro-batches of an 8-example epoch.
    ({"grad_accum": 1000, "batch_size": 2}, r"training\.grad_accum 1000 = 1000 micro-batches per optimizer step, "
                                           r"but an epoch of \d+ examples holds \d+"),
])
def test_a_run_that_cannot_train_is_refused_before_its_folder_exists(tiny_checkpoint, tmp_path, training, message):
    from tests.helpers.train_runs import tiny_recipe
    from training.run import train_recipe

    recipe = tiny_recipe(tiny_checkpoint, tmp_path / "runs", tasks=[{"name": "fin_fpb", "samples": 8}],
                         training={"lr": 5e-3, **training})
    with pytest.raises(RecipeError, match=message):
        train_recipe(parse_recipe(recipe))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_run_whose_loss_stops_being_finite_stops_and_is_never_finished(tiny_checkpoint, tmp_path, monkeypatch):
    """The loss turns NaN at the second optimizer step (as an exploding run's does)."""
    import torch

    from plumbing.folders import is_finished
    from tests.helpers.train_runs import tiny_recipe
    from training import loop
    from training.run import train_recipe

    real, calls = loop.AnswerLoss.forward, []

    def exploding(self, *args, **kwargs):
        calls.append(1)
        loss = real(self, *args, **kwargs)
        return loss * torch.tensor(float("nan")) if len(calls) > 2 else loss

    monkeypatch.setattr(loop.AnswerLoss, "forward", exploding)
    recipe = parse_recipe(tiny_recipe(tiny_checkpoint, tmp_path / "runs", tasks=[{"name": "fin_fpb", "samples": 16}],
                                      training={"lr": 5e-3, "epochs": 2, "batch_size": 4, "grad_accum": 2}))
    with pytest.raises(loop.TrainingDiverged, match=r"optimizer step 2: the loss is nan \(not finite\)"):
        train_recipe(recipe)
    assert not is_finished(tmp_path / "runs" / "fpb-tiny", "training_run")


def test_a_claim_naming_a_task_the_study_never_scores_fails_the_dry_run(tmp_path, capsys):
    """Q1: a typo in claims.yaml passed `study run --dry_run` and failed at table time, after the
    lock had recorded the wrong file."""
    import shutil
    from pathlib import Path

    from finharness.main import main

    folder = shutil.copytree(Path(__file__).resolve().parents[2] / "recipes" / "studies" / "fin-instruct-merge",
                             tmp_path / "study")
    claims = folder / "claims.yaml"
    claims.write_text(claims.read_text().replace("tasks: [fin_headlines]", "tasks: [fin_headlnes]", 1))
    assert main(["study", "run", str(folder), "--dry_run", "--output_path", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "claims.yaml: claims.A0-ft-raises-own-task: tasks: fin_headlnes: not scored by any" in err
    assert "did you mean: fin_headlines" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("claims.lock.json"))


def test_an_alias_bomb_in_a_training_recipe_is_refused_and_errors_stay_short(tmp_path, tiny_checkpoint):
    from training.recipe import load_recipe

    from tests.helpers.tasks import alias_bomb

    path = tmp_path / "recipe.yaml"
    path.write_text(alias_bomb() + "name: *a9\n")
    with pytest.raises(RecipeError, match=r"its YAML aliases expand to more than 100,000 nodes"):
        load_recipe(path)
    # A large (not exploding) wrong value is named briefly, not printed whole.
    path.write_text(f"name: r\nbase_model: {tiny_checkpoint}\ntasks: [{{name: fin_fpb}}]\nseed: [{', '.join(['1'] * 5000)}]\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert "seed" in str(err.value) and len(str(err.value)) < 1000


def test_a_claim_naming_a_metric_no_task_reports_fails_the_dry_run(tmp_path, capsys):
    """Q2: an unknown claim metric was blamed on a samples log at table time."""
    import shutil
    from pathlib import Path

    from finharness.main import main

    folder = shutil.copytree(Path(__file__).resolve().parents[2] / "recipes" / "studies" / "fin-instruct-merge",
                             tmp_path / "study")
    claims = folder / "claims.yaml"
    claims.write_text(claims.read_text().replace("metric: f1_macro", "metric: f1_macr", 1))
    assert main(["study", "run", str(folder), "--dry_run", "--output_path", str(tmp_path / "out")]) == 2
    assert "claims.A0-ft-raises-own-task: metric 'f1_macr' is not one the study's tasks report" in \
        capsys.readouterr().err
