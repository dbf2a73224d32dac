"""The served board under a submitter's payloads, in headless Chromium: every string a
submitter chose shows as text, and no request leaves for any address but the app's own.
The board is read again on each page load, so an entry submitted while it runs appears."""
from __future__ import annotations

import http.server
import threading
import time

import pytest

from leaderboard.store import Board
from tests.helpers.boards import add, entries, serve_board

pytest.importorskip("gradio", reason="the board extra: pip install 'finharness[board]'")


@pytest.fixture
def canary():
    """A server no page should ever reach: every request to it is recorded."""
    hits: list[str] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def payloads(url: str) -> dict:
    """The probe's payloads: an HTML image, a Markdown image and a recipe that closes its fence."""
    return dict(
        name=f'evil<img src="{url}/model-html">![x]({url}/model-md)',
        base_model=f"![base]({url}/base-md)<img src={url}/base-html>",
        revision=f"<img src={url}/rev>",
        recipe_text=f"models: []\n```\n<img src=\"{url}/recipe-html\">\n![r]({url}/recipe-md)\n```\n",
        metadata={"baselines": {f"t<img src={url}/task>": {"predicted": {f"![l]({url}/label)": 3}, "collapsed": ""}}},
    )


def test_payloads_show_as_text_and_fetch_nothing_and_a_new_entry_appears_on_reload(tmp_path, browser, canary):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, hits = canary
    board = Board(tmp_path / "board.sqlite")
    entries(board)
    with serve_board(board) as app_url:
        browser.get(app_url)
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: "3 entries (board read" in d.find_element(By.ID, "header").text)
        assert "fin-merge-ta" in browser.find_element(By.ID, "board").text

        # Submitted while the app runs: on the next page load it is there.
        fields = payloads(url)
        add(board, fields.pop("name"), fpb=0.5, finarg=0.5, model_type="merged", **fields)
        browser.get(app_url)
        wait.until(lambda d: "4 entries (board read" in d.find_element(By.ID, "header").text)
        wait.until(lambda d: "evil<img" in d.find_element(By.ID, "board").text)

        browser.find_element(By.CSS_SELECTOR, "#entry input").click()
        option = 'li[data-testid="dropdown-option"][aria-label^="#4 evil"]'
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, option))
        browser.find_element(By.CSS_SELECTOR, option).click()
        wait.until(lambda d: "evil<img" in d.find_element(By.ID, "details").text)
        details = browser.find_element(By.ID, "details").text
        assert f'evil<img src="{url}/model-html">![x]({url}/model-md)' in details  # the name, as text
        assert f"![base]({url}/base-md)" in details
        wait.until(lambda d: "recipe-html" in d.find_element(By.ID, "recipe").text)
        assert not browser.find_elements(By.CSS_SELECTOR, "#details img, #recipe img, #board img")
        time.sleep(2)  # any image the page would fetch has been asked for by now
    assert hits == [], f"the page fetched {hits}"


def test_the_read_only_app_takes_no_upload_of_any_size(tmp_path):
    """V12: Gradio's upload route answers every app; the board's took a 5 MB file with no cap."""
    import urllib.error
    import urllib.request

    board = Board(tmp_path / "board.sqlite")
    add(board, "m1", 0.5, 0.5)
    def upload(url: str, size: int):
        body = (b"--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"f.bin\"\r\n"
                b"Content-Type: application/octet-stream\r\n\r\n" + b"\0" * size + b"\r\n--x--\r\n")
        request = urllib.request.Request(f"{url}gradio_api/upload", data=body, method="POST",
                                         headers={"Content-Type": "multipart/form-data; boundary=x"})
        return urllib.request.urlopen(request, timeout=60)

    with serve_board(board) as url:
        assert upload(url, 100).status == 200  # the route is there: it is the cap that refuses below
        try:
            upload(url, 5 << 20)
            refused = None
        except urllib.error.HTTPError as err:
            refused = err.code
        except urllib.error.URLError as err:  # the server may close the connection mid-body
            refused = type(err.reason).__name__
    assert refused in (400, 413, "ConnectionResetError", "BrokenPipeError"), refused


def test_the_drill_down_draws_an_entry_whose_name_reads_as_mathtext(tmp_path):
    """V4: `$\\frac{$` in a name stopped the served drill-down's lineage picture, which kept showing
    the previous entry's text. The picture is drawn with the name as plain text."""
    from leaderboard.serve import lineage_png

    board = Board(tmp_path / "board.sqlite")
    add(board, "m $\\frac{$ x", 0.5, 0.5, base_model="base $\\sqrt{$")
    (entry,) = board.entries()
    picture = lineage_png(entry, tmp_path)
    assert picture is not None and picture.stat().st_size > 0
    svg = picture.with_suffix(".svg").read_text()
    assert "m $\\frac{$ x" in svg and "base $\\sqrt{$" in svg
