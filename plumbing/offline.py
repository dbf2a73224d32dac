"""The Hugging Face Hub switch: offline unless a command is given ``--online``."""
from __future__ import annotations

import os


def set_offline(online: bool) -> None:
    """Offline unless asked: lookups fail at once instead of waiting on network timeouts."""
    if not online:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ[var] = "1"
