"""submit -> render -> the page in headless Chromium shows the entries and sorts by a click."""
import os


from finharness.main import main
from leaderboard.store import Board
from tests.helpers.checkpoints import build_tiny_checkpoint
from tests.helpers.boards import add


def test_the_rendered_board_shows_every_entry_and_sorts_by_any_column(browser, tmp_path, capsys):
    from selenium.webdriver.common.by import By

    # The verified-submission path is covered in test_leaderboard.py; here the rows are
    # written straight to the store so the scores, and so the expected order, are known.
    board = Board(tmp_path / "board.sqlite")
    add(board, "smollm2-135m-instruct", fpb=0.45, finarg=0.40)  # no tie with a k/4 score
    add(board, "fin-merge-ta", fpb=0.70, finarg=0.55, model_type="merged", base_model="smollm2-135m-instruct",
        recipe="recipes/merges/task_arithmetic_seen.yaml", recipe_text="method: task_arithmetic\n")
    add(board, "fin-fpb-lora", fpb=0.90, finarg=0.20, model_type="fine-tuned", base_model="smollm2-135m-instruct")

    # And one entry the way a user adds it: a `finharness eval` folder through `submit`.
    model = build_tiny_checkpoint(tmp_path / "tiny")
    assert main(["eval", "-m", str(model), "-t", "fin_fpb,fin_finarg_auc", "--limit", "4",
                 "--output_path", str(tmp_path / "eval")]) == 0
    submission = tmp_path / "tiny.yaml"
    submission.write_text(f"model: tiny-submitted\nmodel_type: pretrained\nweight_type: original\n"
                          f"precision: float32\nchat_template: false\nresults: {tmp_path / 'eval'}\n")
    assert main(["leaderboard", "submit", str(submission), "--board", str(board.path)]) == 0

    page = tmp_path / "site" / "index.html"
    assert main(["leaderboard", "render", "--board", str(board.path), "--output_path", str(page)]) == 0
    browser.get(page.as_uri())

    def column(name):
        headers = [th.get_attribute("data-column") for th in browser.find_elements(By.CSS_SELECTOR, "#board th")]
        i = headers.index(name)
        return [row.find_elements(By.TAG_NAME, "td")[i].text for row in browser.find_elements(By.CSS_SELECTOR, "#board tbody tr")]

    # The order the rows arrive in is shown on its header, which is among the first columns
    # (with id and model, frozen while the rest scroll).
    headers = [th.get_attribute("data-column") for th in browser.find_elements(By.CSS_SELECTOR, "#board th")]
    assert headers[:5] == ["id", "model", "unseen_rank", "unseen_norm", "unseen_norm_ci"]
    assert browser.find_element(By.CSS_SELECTOR, 'th[data-column="unseen_norm"]').get_attribute("aria-sort") == "descending"
    assert browser.find_element(By.CSS_SELECTOR, 'th[data-column="model"]').value_of_css_property("position") == "sticky"
    # Rendered by normalized unseen macro-F1, best first; entries written before baselines existed
    # have none and follow in the order they were submitted, never by a raw average (which a
    # constant answer can top).
    models = column("model")
    assert models[0] == "tiny-submitted"  # the one entry with a normalized score
    assert models[1:] == ["smollm2-135m-instruct", "fin-merge-ta", "fin-fpb-lora"]
    # Its rank and band, from its own per-sample logs; the others have none to resample.
    ranks = dict(zip(column("model"), column("unseen_rank")))
    assert ranks["tiny-submitted"] == "1 of 1" and ranks["fin-fpb-lora"] == ""
    forgetting = dict(zip(column("model"), column("unseen_change")))
    assert forgetting == {"fin-merge-ta": "+0.1500", "smollm2-135m-instruct": "", "fin-fpb-lora": "-0.2000",
                          "tiny-submitted": ""}
    tiny_fpb = float(dict(zip(column("model"), column("fin_fpb")))["tiny-submitted"])
    by_fpb = sorted([("fin-fpb-lora", 0.9), ("fin-merge-ta", 0.7), ("smollm2-135m-instruct", 0.45),
                     ("tiny-submitted", tiny_fpb)], key=lambda m: -m[1])
    browser.find_element(By.CSS_SELECTOR, 'th[data-column="fin_fpb"]').click()
    assert column("model") == [m for m, _ in by_fpb]  # best first
    browser.find_element(By.CSS_SELECTOR, 'th[data-column="fin_fpb"]').click()
    assert column("model") == [m for m, _ in reversed(by_fpb)]
    browser.find_element(By.CSS_SELECTOR, 'th[data-column="model"]').click()  # z to a first
    assert column("model") == ["tiny-submitted", "smollm2-135m-instruct", "fin-merge-ta", "fin-fpb-lora"]
    browser.find_element(By.CSS_SELECTOR, 'th[data-column="unseen_change"]').click()
    assert column("unseen_change") == ["+0.1500", "-0.2000", "", ""]  # empty cells last

    # Plots: a point per entry in the scatter, a bar per entry in each task's chart.
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.scatter #scatter-points use")) == 4
    assert len(browser.find_elements(By.CSS_SELECTOR, 'svg[aria-label="fin_fpb"] [id^="bar-fin_fpb-"]')) == 4
    assert "4 of 4 entries" in browser.find_element(By.CSS_SELECTOR, "figure figcaption").text
    # The recipe link opens the recipe copied into the page.
    link = browser.find_element(By.CSS_SELECTOR, 'tr[data-id="2"] a')
    assert link.get_attribute("href").endswith("#recipe-2")
    # Scrolled to the middle of the view, as a reader would, not under the frozen columns.
    browser.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", link)
    link.click()
    browser.find_element(By.CSS_SELECTOR, "#recipe-2 summary").click()
    assert "method: task_arithmetic" in browser.find_element(By.CSS_SELECTOR, "#recipe-2 pre").text

    # Search and filters, in the page: rows that do not match are hidden, and the count says so.
    from selenium.webdriver.support.ui import Select

    def visible():
        return sorted(r.get_attribute("data-model") for r in browser.find_elements(By.CSS_SELECTOR, "#board tbody tr")
                      if r.is_displayed())

    browser.find_element(By.ID, "search").send_keys("FIN-")
    assert visible() == ["fin-fpb-lora", "fin-merge-ta"]
    assert browser.find_element(By.ID, "shown").text == "2 of 4 entries"
    Select(browser.find_element(By.ID, "filter-method")).select_by_value("merged")
    assert visible() == ["fin-merge-ta"]
    browser.find_element(By.ID, "search").clear()
    browser.execute_script('document.getElementById("search").dispatchEvent(new Event("input"))')
    Select(browser.find_element(By.ID, "filter-method")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-base")).select_by_value("smollm2-135m-instruct")
    assert visible() == ["fin-fpb-lora", "fin-merge-ta", "smollm2-135m-instruct"]  # its own base, and its two children
    Select(browser.find_element(By.ID, "filter-base")).select_by_value("")
    task_sets = [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "filter-taskset")).options]
    assert task_sets == ["", "2 tasks: fin_finarg_auc, fin_fpb"]  # every entry here scored the same two tasks
    Select(browser.find_element(By.ID, "filter-shots")).select_by_value("0")
    assert len(visible()) == 4
    # The family is the architecture the evaluation recorded: the submitted tiny model is a llama;
    # the rows written straight to the store recorded none.
    Select(browser.find_element(By.ID, "filter-family")).select_by_value("llama")
    assert visible() == ["tiny-submitted"]
    if os.environ.get("FINHARNESS_SCREENSHOT"):  # for a person to look at the page
        browser.save_screenshot(os.environ["FINHARNESS_SCREENSHOT"])
