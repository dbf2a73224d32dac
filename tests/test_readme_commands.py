"""Every finharness command the README and docs/ show parses with today's CLI (docs do not drift)."""
import re
import shlex
from pathlib import Path

import pytest

from finharness.eval import run as cmd_eval
from finharness.main import build_parser

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def readme_commands() -> list[str]:
    blocks = [b for doc in DOCS for b in re.findall(r"```bash\n(.*?)```", doc.read_text(), flags=re.S)]
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    commands = []
    for line in lines:
        if not line or line.startswith("#"):
            continue
        for part in line.split("&&"):
            words = shlex.split(part.strip())
            if words[:1] == ["finharness"]:
                commands.append(words[1:])
            elif "finharness" in words[1:]:  # accelerate launch ... -m finharness train ...
                commands.append(words[words.index("finharness", 1) + 1:])
    return commands


COMMANDS = readme_commands()


def test_the_readme_shows_the_leaderboard_and_scale_out_commands():
    shown = {tuple(c[:2]) for c in COMMANDS}
    assert {("leaderboard", "submit"), ("leaderboard", "show"), ("leaderboard", "render")} <= shown
    assert any("vllm" in c for c in COMMANDS) and any("parallelize=True" in c for c in COMMANDS)


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(c)[:60] for c in COMMANDS])
def test_readme_command_parses(words):
    args = build_parser().parse_args(words)
    assert args.func is not None


def test_a_rank_without_results_prints_nothing(monkeypatch, capsys, tiny_checkpoint):
    """Under `accelerate launch`, lm-eval returns results on rank 0 only."""
    import lm_eval

    monkeypatch.setattr(lm_eval, "simple_evaluate", lambda **kwargs: None)
    args = build_parser().parse_args(["eval", "-m", str(tiny_checkpoint), "-t", "fin_fpb", "--limit", "2"])
    assert cmd_eval(args) == 0
    assert "##" not in capsys.readouterr().out


def test_every_checkpoint_a_shipped_merge_recipe_names_is_made_by_a_shipped_training_recipe():
    """The tour merges runs/…-instruct-lora folders: each must be the output of a recipe in
    recipes/training/, so a user who runs the README's train lines can run its merge line."""
    import yaml

    from plumbing.checkpoints import EMBEDDED
    from training.recipe import load_recipe

    made = {str(load_recipe(p).run_dir()) for p in sorted((REPO / "recipes" / "training").glob("*.yaml"))}
    for path in sorted((REPO / "recipes" / "merges").glob("*.yaml")):
        models = [m["model"] for m in yaml.safe_load(path.read_text())["models"]]
        missing = [m for m in models if m not in EMBEDDED and m not in made]
        assert missing == [], f"{path.name} names {missing}, which no recipe in recipes/training/ writes"
    # And the README trains every run the tour's merge names.
    tour = REPO.joinpath("README.md").read_text().split("## A tour")[1].split("\n## ")[0]
    merged = yaml.safe_load((REPO / "recipes/merges/task_arithmetic_seen.yaml").read_text())["models"]
    for model in merged:
        run = Path(model["model"]).name.removesuffix("-instruct-lora")
        assert f"finharness train recipes/training/{run}_instruct_lora.yaml" in tour, run


def test_every_subcommand_and_option_says_what_it_does():
    """`finharness --help` and every subcommand's page: a description, and help on every option."""
    import argparse

    parser = build_parser()
    assert parser.description.startswith("Score, fine-tune and merge small LLMs")
    missing = []

    def walk(p: argparse.ArgumentParser, where: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {c.dest: c.help for c in action._choices_actions}
                for name, sub in action.choices.items():
                    if not helps.get(name) or not sub.description:
                        missing.append(f"{where} {name} (no help line or description)")
                    walk(sub, f"{where} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{where} {'/'.join(action.option_strings) or action.dest}")

    walk(parser, "finharness")
    assert missing == []


def test_every_folder_and_file_the_layout_names_exists():
    """The Layout block (docs/architecture.md): each top-level folder, and each file or folder it names under it."""
    text = (REPO / "docs" / "architecture.md").read_text()
    block = text.split("## Layout")[1].split("```")[1]
    missing, section = [], REPO
    for line in block.splitlines():
        head = re.match(r"^([\w.-]+/)\s", line)
        if head:
            section = REPO / head.group(1)
            if not section.is_dir():
                missing.append(head.group(1))
        for name in re.findall(r"(?<![\w<{/.])([\w-]+\.(?:py|md|html|sh|toml|txt))\b", line):
            if not (REPO / name).exists() and not any(section.rglob(name)) and not any(REPO.rglob(name)):
                missing.append(name)
        for folder in re.findall(r"(?<![\w<{/.-])((?:[a-z_]+/)+)(?=[\s,;)]|$)", line):
            if line.startswith(folder):
                continue
            if not (section / folder).is_dir() and not (REPO / folder).is_dir():
                missing.append(f"{section.name}/{folder}")
    assert missing == []


OLD_SPELLINGS = {"--output-dir": "--output_path", "--dry-run": "--dry_run", "--no-data": "--no_data",
                 "--select-on": "--select_on", "--trained-on": "--trained_on"}


def test_one_spelling_lm_evals_and_the_old_ones_still_work_with_a_notice(capsys):
    """Options are spelled as lm-eval spells them (underscores, --output_path); the former
    spellings parse to the same value with a one-line notice, and no doc shows them."""
    parser = build_parser()
    cases = [(["train", "r.yaml", "--output-dir", "out"], "output_dir", Path("out"), "--output_path"),
             (["merge", "r.yaml", "--dry-run"], "dry_run", True, "--dry_run"),
             (["study", "run", "f", "--dry-run", "--output-dir", "o"], "output_dir", Path("o"), "--output_path"),
             (["validate", "--no-data"], "no_data", True, "--no_data"),
             (["views", "--trained-on", "a", "--trained-on", "b"], "trained_on", ["a", "b"], "--trained_on"),
             (["deviation", "m", "--base", "b", "--output", "x.json"], "base", "b", "--base_model"),
             (["leaderboard", "render", "--out", "p.html"], "out", Path("p.html"), "--output_path")]
    for argv, dest, value, new in cases:
        assert getattr(parser.parse_args(argv), dest) == value, argv
        assert f"is now spelled {new}" in capsys.readouterr().err
    # Defaults are unchanged when neither spelling is given.
    assert parser.parse_args(["merge", "r.yaml"]).dry_run is False
    assert parser.parse_args(["train", "r.yaml"]).output_dir is None
    shown = "\n".join(doc.read_text() for doc in DOCS)
    for old in OLD_SPELLINGS:
        assert re.search(rf"(?<!pip install ){re.escape(old)}\b", shown) is None, old
