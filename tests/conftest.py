"""Shared fixtures: a tiny random causal LM that lm-eval can load, built offline."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers.checkpoints import build_tiny_checkpoint

# Nothing in the suite may touch the network.
for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[var] = "1"
# pytest-xdist workers share the cores: each takes its share of torch's threads.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    import torch

    share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    torch.set_num_threads(share)
    # The commands a test launches (finharness, lm_eval, torchrun) take the same share: two
    # workers' children each spinning two OpenMP threads on two cores slow each other far more than 2x.
    os.environ.setdefault("OMP_NUM_THREADS", str(share))
# Request caches of this session stay in a scratch folder, not in the user's cache.
os.environ["FINHARNESS_LM_CACHE"] = tempfile.mkdtemp(prefix="finharness-lm-cache-")


def pytest_collection_modifyitems(config, items) -> None:
    """Files holding a slow test first, then the others by test count, each file's tests kept
    together: xdist's --dist loadfile hands files to whichever worker is free in this order, so
    the longest start first and the two workers end close together. Its own reorder counts
    tests, which put a one-test 45 s file (the README tour) near the end."""
    counts: dict = {}
    for item in items:
        counts[item.path] = counts.get(item.path, 0) + 1
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.path not in slow, -counts[item.path], str(item.path)))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def progress():
    """finharness's progress lines on stdout, as the command line shows them (plumbing/logs.py)."""
    from plumbing.logs import show_progress

    show_progress()


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

@pytest.fixture
def browser():
    """A headless Chromium (the page and served-app tests); CI must have it."""
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test: ./install.sh --test installs chromium and chromium-driver")
        pytest.skip("no chromium/chromedriver (./install.sh --test installs them with apt-get)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()

