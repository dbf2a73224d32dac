"""Task folders that carry code (issue 48, X1-X3, X6): the board runs none of it, validate
reads it without running it, and eval renders every template in Jinja's sandbox.

Each payload writes a canary file when it runs; every test checks that the canary is absent."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fin_tasks import TASKS_DIR
from fin_tasks.sandbox import code_in_task_folders, read_task_yaml, template_environment
from finharness.main import main
from leaderboard.store import Board
from tests.bad_input.forgery import submission
from tests.helpers.tasks import HELD_OUT_TASK, alias_bomb, readme_files

SHELL = "{{ cycler.__init__.__globals__.os.popen('touch %s').read() }}"


def held_out_folder(root: Path) -> Path:
    """The README's held-out task, as a submitter sends it: my_tasks/fin_earnings_tone/."""
    for path, body in readme_files().items():
        if path.startswith("my_tasks/"):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(body)
    shutil.copy(TASKS_DIR / "_multiple_choice_yaml", root / "my_tasks" / HELD_OUT_TASK)
    return root / "my_tasks"


def task_yaml(folder: Path) -> Path:
    return folder / HELD_OUT_TASK / f"{HELD_OUT_TASK}.yaml"


def with_import_payload(folder: Path, canary: Path) -> None:
    """X1: a process_docs function in a utils.py beside the YAML, which writes the canary on import."""
    (folder / HELD_OUT_TASK / "utils.py").write_text(
        f"from pathlib import Path\nPath({str(canary)!r}).touch()\n\ndef process_docs(ds):\n    return ds\n")
    path = task_yaml(folder)
    path.write_text(path.read_text() + "process_docs: !function utils.process_docs\n")


def with_template_payload(folder: Path, canary: Path, field: str = "doc_to_text") -> None:
    """X2: a template that reaches os.popen through a Jinja global."""
    path = task_yaml(folder)
    text = path.read_text()
    payload = json.dumps(SHELL % canary + "Text: {{text}}\nAnswer:")
    if field == "doc_to_text":
        text = "\n".join(f"doc_to_text: {payload}" if line.startswith("doc_to_text:") else line
                         for line in text.splitlines()) + "\n"
    else:
        text += f"{field}: {payload}\n"
    path.write_text(text)


@pytest.fixture
def tiny(tmp_path_factory):
    from tests.helpers.checkpoints import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("payload", ["import", "template"])
def test_the_board_refuses_a_task_folder_that_would_run_code_and_runs_none(tmp_path, tiny, capsys, payload):
    """X1/X2 through `leaderboard submit` with a checkpoint: the board would have scored the
    folder (10 renders); it names the file and runs nothing."""
    canary = tmp_path / "CANARY"
    folder = held_out_folder(tmp_path)
    (with_import_payload if payload == "import" else with_template_payload)(folder, canary)
    sub = submission(tmp_path, model="mallory", checkpoint=str(tiny), include_paths=["my_tasks"], tasks=[HELD_OUT_TASK])
    board = tmp_path / "board.sqlite"
    assert main(["leaderboard", "submit", str(sub), "--board", str(board)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    named = "utils.py: a code file" if payload == "import" else f"{HELD_OUT_TASK}.yaml: doc_to_text: the template"
    assert len(err) == 1 and named in err[0] and "runs none of them" in err[0], err
    assert not canary.exists()
    assert Board(board).entries() == []


def test_the_board_refuses_code_in_results_only_submissions_too(tmp_path, five_docs, capsys):
    canary = tmp_path / "CANARY"
    folder = held_out_folder(tmp_path)
    with_import_payload(folder, canary)
    sub = submission(tmp_path, model="mallory", results=str(five_docs), include_paths=["my_tasks"])
    assert main(["leaderboard", "submit", str(sub), "--board", str(tmp_path / "board.sqlite")]) == 2
    assert "utils.py: a code file" in capsys.readouterr().err
    assert not canary.exists()


def test_a_function_outside_the_package_is_refused_even_without_a_code_file(tmp_path):
    """`!function os.system` needs no file: anything outside fin_tasks.* is refused, by line."""
    folder = held_out_folder(tmp_path)
    path = task_yaml(folder)
    path.write_text(path.read_text() + "process_results: !function os.system\n")
    uses = code_in_task_folders([folder])
    assert [(u.kind, u.file, u.line) for u in uses] == [("function", path, 8)], uses
    assert "!function os.system would import and run code" in str(uses[0])


def test_an_include_from_elsewhere_is_read_and_its_code_files_refused(tmp_path):
    """lm-eval resolves `!function fin_tasks.common.data.load` beside the including YAML first:
    a fin_tasks/common/data.py planted there would run. Includes are followed and checked."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "fin_tasks" / "common").mkdir(parents=True)
    (elsewhere / "fin_tasks" / "common" / "data.py").write_text("raise SystemExit('ran')\n")
    shutil.copy(TASKS_DIR / "_multiple_choice_yaml", elsewhere / "template_yaml")
    folder = held_out_folder(tmp_path / "sub")
    path = task_yaml(folder)
    path.write_text(path.read_text().replace("include: _multiple_choice_yaml", f"include: {elsewhere / 'template_yaml'}"))
    uses = code_in_task_folders([folder])
    assert [u.file.name for u in uses] == ["data.py"], uses


def test_the_readme_held_out_task_runs_no_code_of_its_own(tmp_path):
    """The documented folder (the packaged template's fin_tasks.* functions) is accepted."""
    assert code_in_task_folders([held_out_folder(tmp_path)]) == []


def test_validate_reports_code_without_running_it(tmp_path, capsys, monkeypatch):
    """X3: validate used to import the utils.py it checked; now it reads and reports it."""
    canary = tmp_path / "CANARY"
    folder = held_out_folder(tmp_path)
    with_import_payload(folder, canary)
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--include_path", "my_tasks"]) == 0
    out = capsys.readouterr().out
    assert f"code   {folder / HELD_OUT_TASK / 'utils.py'}: a code file" in out
    assert "process_docs: !function utils.process_docs would import and run code" in out
    assert "2 place(s) would run code (none was run here" in out
    assert not canary.exists()


@pytest.mark.parametrize("field", ["doc_to_text", "description"])
def test_eval_renders_templates_in_the_sandbox_and_names_the_field(tmp_path, tiny, capsys, monkeypatch, field):
    """X2 in a user's own eval: refused before scoring, with the file and field; nothing runs."""
    canary = tmp_path / "CANARY"
    folder = held_out_folder(tmp_path)
    with_template_payload(folder, canary, field)
    monkeypatch.chdir(tmp_path)
    code = main(["eval", "-m", str(tiny), "--include_path", "my_tasks", "-t", HELD_OUT_TASK, "--chat_template", "off"])
    err = capsys.readouterr().err
    assert code == 2 and f"{HELD_OUT_TASK}.yaml" in err and field in err, err
    assert not canary.exists()


def test_the_sandbox_itself_stops_what_a_static_check_could_miss(tmp_path):
    """The last line of defence: whatever reaches lm-eval's renderer runs in the sandbox."""
    import jinja2
    import lm_eval.utils

    from fin_tasks.sandbox import sandbox_templates

    canary = tmp_path / "CANARY"
    sandbox_templates()
    for template in (SHELL % canary, "{{ ''.__class__.__mro__ }}", "{{ (''|attr('__class__')) }}",
                     "{{ 'a' * 10**10 }}", "{{ lipsum(10**6) }}", "{% set x = [] %}{{ x.append(1) }}"):
        with pytest.raises(jinja2.TemplateError):
            lm_eval.utils.apply_template(template, {"text": "t"})
    assert not canary.exists()
    # What task templates do use still works: fields, filters, loops, string methods, lm-eval's filter.
    env = template_environment()
    ok = env.from_string("{{ text.strip()|upper }}{% for c in choices %} {{ loop.index }}.{{ c }}{% endfor %}"
                         "{{ text|regex_replace('t', 'T') }}")
    assert ok.render(text=" t ", choices=["a", "b"]) == "T 1.a 2.b T "


def test_an_alias_bomb_is_refused_by_validate_and_eval_before_any_scoring(tmp_path, tiny, capsys, monkeypatch):
    """X6: nine levels of nine aliases under metadata: (9**9 nodes once expanded)."""
    folder = held_out_folder(tmp_path)
    path = task_yaml(folder)
    path.write_text(path.read_text() + "metadata:\n" + alias_bomb(indent="  "))
    with pytest.raises(ValueError, match=r"its YAML aliases expand to more than 100,000 nodes"):
        read_task_yaml(path)
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--include_path", "my_tasks"]) == 1
    assert f"error  {path}: its YAML aliases expand" in capsys.readouterr().out
    assert main(["eval", "-m", str(tiny), "--include_path", "my_tasks", "-t", HELD_OUT_TASK,
                 "--chat_template", "off", "-o", "results"]) == 2
    assert "its YAML aliases expand" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_the_packaged_suite_is_the_packages_own_code_and_is_not_reported():
    from fin_tasks import HUB_TASKS_DIR

    assert code_in_task_folders([TASKS_DIR, HUB_TASKS_DIR]) == []
