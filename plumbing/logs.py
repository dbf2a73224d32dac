"""One logger for finharness's progress lines; the command line shows them on stdout.

Library calls stay silent unless the caller configures logging (``finharness`` does, at
INFO), instead of every function taking a ``print``-like callback.
"""
from __future__ import annotations

import logging
import sys

log = logging.getLogger("finharness")


class _CurrentStdout(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is now (a test's capture, a redirected stream)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


def show_progress() -> None:
    """Progress lines (INFO) on stdout, warnings on stderr, once per process."""
    if not any(isinstance(h, _CurrentStdout) for h in log.handlers):
        handler = _CurrentStdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(lambda record: record.levelno < logging.WARNING)
        log.addHandler(handler)
        errors = logging.StreamHandler()
        errors.setLevel(logging.WARNING)
        errors.setFormatter(logging.Formatter("finharness: %(levelname)s: %(message)s"))
        log.addHandler(errors)
    log.setLevel(logging.INFO)
