"""The logs under .runtime/logs rotate: a file past ``log_max_mb`` is copied to ``<name>.log.1`` (older copies
shift to .2 … up to ``log_keep``, the oldest is deleted) and emptied in place.

Copy-then-truncate, as logrotate's ``copytruncate``: every process of ours writes its log through a descriptor
opened in append mode, so it goes on writing at the new end of the same file without being told. Lines written
between the copy and the truncation are lost, which is that method's known price. The watchdog rotates every
minute; a process's start rotates its own log first.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from core.settings import Settings

log = logging.getLogger(__name__)

ROTATE_EVERY_S = 60.0


def rotate(path: Path, max_bytes: int, keep: int) -> bool:
    """Rotate ``path`` if it is larger than ``max_bytes``; whether it did. Best effort: a full disk or a file
    that is gone is no reason to stop anything."""
    try:
        if not path.exists() or path.stat().st_size <= max_bytes:  # a first run: nothing to rotate yet
            return False
        for n in range(keep - 1, 0, -1):
            older = path.with_name(f"{path.name}.{n}")
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{n + 1}"))
        shutil.copyfile(path, path.with_name(f"{path.name}.1"))
        os.truncate(path, 0)
        return True
    except OSError as exc:
        log.warning("could not rotate %s: %s", path, exc)
        return False


def rotate_all(settings: Settings) -> list[Path]:
    """Rotate every log of the runtime folder that is due; the ones rotated."""
    folder = settings.runtime_dir / "logs"
    limit = settings.log_max_mb * 1024 * 1024
    return [p for p in sorted(folder.glob("*.log")) if rotate(p, limit, settings.log_keep)]


class Rotation:
    """Calls rotate_all at most every ROTATE_EVERY_S (the watchdog's loop asks each second)."""

    def __init__(self, settings: Settings):
        self.settings, self.next_at = settings, 0.0

    def __call__(self) -> None:
        if time.monotonic() >= self.next_at:
            self.next_at = time.monotonic() + ROTATE_EVERY_S
            for path in rotate_all(self.settings):
                log.info("rotated %s", path)
