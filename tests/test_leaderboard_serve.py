"""`finharness leaderboard serve`: the Gradio app started as a user starts it, driven in headless Chromium."""
from __future__ import annotations


import pytest

from leaderboard.store import Board
from tests.helpers.boards import entries, serve_board

pytest.importorskip("gradio", reason="the board extra: pip install 'finharness[board]'")


def test_filters_and_drill_down_without_a_browser(tmp_path):
    from leaderboard.render import facets
    from leaderboard.serve import details_markdown, filter_rows, merge_parents
    from leaderboard.table import board_rows

    board = Board(tmp_path / "board.sqlite")
    entries(board)
    by_id = {e.id: e for e in board.entries()}
    rows = board_rows(board.entries())[0]
    for r in rows:
        r["facets"] = facets(by_id[r["id"]], r)
    assert [r["model"] for r in filter_rows(rows, "FIN-")] == ["fin-merge-ta", "fin-fpb-lora"]
    assert [r["model"] for r in filter_rows(rows, "", method="merged")] == ["fin-merge-ta"]
    assert len(filter_rows(rows, "", method="all", base="smollm2-135m-instruct")) == 3
    merged = next(e for e in board.entries() if e.model == "fin-merge-ta")
    assert merge_parents(merged) == [("runs/fpb-lora", 0.25), ("runs/fomc-lora", 0.75)]
    text = details_markdown(merged, next(r for r in rows if r["model"] == "fin-merge-ta"), "acc")
    assert "| fin\\_fpb | neutral 48, positive 2 |  | neutral | 0.260 | +0.122 |" in text
    assert "Change against entry #1: unseen +0.1500 (negative = forgetting)" in text
    # Submitter-chosen text is escaped for Markdown (it renders as the same text); the recipe is
    # shown in its own code component, not here.
    assert "### #2 fin\\-merge\\-ta" in text and "method: task_arithmetic" not in text


@pytest.fixture
def served(tmp_path):
    board = Board(tmp_path / "board.sqlite")
    entries(board)
    with serve_board(board) as url:
        yield url


def test_the_served_board_searches_filters_and_drills_down(served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served)
    wait = WebDriverWait(browser, 60)

    def board_text() -> str:
        return browser.find_element(By.ID, "board").text

    wait.until(lambda d: "board read" in d.find_element(By.ID, "header").text)  # the page's own read is done
    wait.until(lambda d: "fin-merge-ta" in board_text())
    assert "fin-fpb-lora" in board_text() and "smollm2-135m-instruct" in board_text()

    # Search by name: the vanilla entry leaves the table.
    box = browser.find_element(By.CSS_SELECTOR, "#search textarea, #search input")
    box.send_keys("fin-")
    wait.until(lambda d: "instruct" not in board_text().split("\n"))  # its model_type cell is gone
    assert board_text().count("smollm2-135m-instruct") == 2  # left only as the others' base model

    def choose(elem_id: str, value: str) -> None:
        browser.find_element(By.CSS_SELECTOR, f"#{elem_id} input").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'li[data-testid="dropdown-option"][aria-label="{value}"]'))
        browser.find_element(By.CSS_SELECTOR, f'li[data-testid="dropdown-option"][aria-label="{value}"]').click()

    # Filter by method: only the merge is left.
    choose("filter-method", "merged")
    wait.until(lambda d: "fin-fpb-lora" not in board_text() and "fin-merge-ta" in board_text())

    # Drill down into the merge: its per-task table, histogram, recipe, and its lineage picture.
    choose("entry", "#2 fin-merge-ta")
    wait.until(lambda d: "neutral 48" in d.find_element(By.ID, "details").text)
    details = browser.find_element(By.ID, "details").text
    assert "Change against entry #1" in details
    wait.until(lambda d: "method: task_arithmetic" in d.find_element(By.ID, "recipe").text)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lineage img"))
