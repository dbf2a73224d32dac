"""The Hugging Face Hub switch: offline unless a command is given ``--online``."""
from __future__ import annotations

import os

SWITCHES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def is_offline(*switches: str) -> bool:
    """Whether any of these environment switches (default: all three) says offline."""
    flags = (os.environ.get(v, "") for v in switches or SWITCHES)
    return any(f.strip().lower() in {"1", "true", "yes", "on"} for f in flags)


def set_offline(online: bool) -> None:
    """Offline unless asked: lookups fail at once instead of waiting on network timeouts."""
    if not online:
        for var in SWITCHES:
            os.environ[var] = "1"
