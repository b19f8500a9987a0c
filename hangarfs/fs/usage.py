"""What ``df`` shows for a mount: the repository's size as *used*, its filesystem's free space."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

CACHE_SECONDS = 2.0  # df and friends ask often; a walk of the store is cheap, not free


class RepositoryUsage:
    """(bytes the repository's store occupies, bytes free on its filesystem), cached briefly."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self._lock = threading.Lock()
        self._cached: tuple[float, int, int] | None = None

    def __call__(self) -> tuple[int, int]:
        now = time.monotonic()
        with self._lock:
            if self._cached is None or now - self._cached[0] > CACHE_SECONDS:
                used = 0
                for dirpath, _, files in os.walk(self.store_dir):
                    for name in files:
                        try:
                            used += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                        except OSError:
                            pass  # removed while we walked
                st = os.statvfs(self.store_dir)
                self._cached = (now, used, st.f_bavail * st.f_frsize)
            return self._cached[1], self._cached[2]


def statfs_of(used: int, free: int, block: int = 4096) -> dict[str, int]:
    """A ``statvfs`` answer: the repository's bytes as used blocks, the free space as free ones."""
    return {
        'f_bsize': block,
        'f_frsize': block,
        'f_blocks': (used + free) // block,
        'f_bfree': free // block,
        'f_bavail': free // block,
        'f_namemax': 255,
    }
