"""One task folder for plain ``lm_eval``, which keeps a single ``--include_path``.

``lm_eval --include_path A --include_path B`` indexes only B, and a folder of links to A and
B indexes nothing (lm-eval's ``Path.glob("**")`` does not enter linked folders). So
``python -m fin_tasks my_tasks`` builds a folder of real directories whose *files* are links
to the packaged suite's and to each given folder's, and prints it:

    lm_eval --include_path "$(python -m fin_tasks my_tasks)" --tasks fin_fpb,fin_earnings_tone

lm-eval resolves a task YAML's path before reading its ``include:`` and ``!function`` tags,
and finharness's loader resolves it before finding ``data/``, so every task reads its own
files where they are. The folder is rebuilt on every call (a task added since is seen) under
finharness's cache, named by the folders it joins.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from fin_tasks import PACKAGE_DIR, TASKS_DIR


def one_folder(folders: Sequence[str | Path], hub: bool = False) -> Path:
    """A folder lm-eval indexes as the packaged suite (with the Hub-only tasks if ``hub``) plus
    ``folders``; each must exist."""
    from plumbing.checkpoints import finharness_home

    roots = [PACKAGE_DIR if hub else TASKS_DIR]
    for folder in folders:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise ValueError(f"{folder}: no such task folder")
        roots.append(path)
    key = hashlib.sha256("\n".join(map(str, roots)).encode()).hexdigest()[:16]
    target = finharness_home() / "cache" / "include_path" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
    try:
        for i, root in enumerate(roots):
            for file in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                link = work / f"{i}-{root.name}" / file.relative_to(root)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(file.resolve())
        old = target.with_name(f".{key}-old-{os.getpid()}")
        if target.exists():
            target.rename(old)
        work.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
