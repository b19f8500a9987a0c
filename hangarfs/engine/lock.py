"""The writer lock: one writer per repository, held as an OS file lock.

``flock`` on ``.hangarfs/writer.lock``: the kernel drops it when the holder exits, however it exits
(SIGKILL included), so a crashed writer never leaves the repository locked. The holder writes its pid,
host, start time and purpose into the file so that a refused writer can say who holds it. A lock is
per open file description, so a second writer in the same process is refused too.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from hangarfs.errors import WriterLockHeld


def read_holder(lock_path: Path) -> dict[str, Any] | None:
    try:
        text = lock_path.read_text()
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class WriterLock:
    def __init__(self, lock_path: Path, repo_path: str) -> None:
        self.path = Path(lock_path)
        self.repo_path = repo_path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, **info: Any) -> None:
        """Take the lock or raise WriterLockHeld naming the holder. ``info`` is recorded (mountpoint...)."""
        if self._fd is not None:
            raise RuntimeError('this WriterLock is held already')
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WriterLockHeld(self.repo_path, read_holder(self.path)) from None
        except BaseException:
            os.close(fd)
            raise
        record = {
            'pid': os.getpid(),
            'host': socket.gethostname(),
            'since': time.strftime('%Y-%m-%d %H:%M:%S'),
            'command': ' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200],
            **info,
        }
        data = json.dumps(record).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        self._fd = fd

    def release(self) -> None:
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def is_locked_by_other(self) -> dict[str, Any] | None:
        """The holder's record if another open file holds the lock right now, else None."""
        if self._fd is not None:
            return None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_holder(self.path) or {}
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)
