"""Becoming the one writer of a repository, and ceasing to be it: one way, used by every writer.

A :class:`WriterSession` takes the writer lock (or raises WriterLockHeld naming the holder), then,
before anything is written: checks a staging area that a power cut may have damaged and marks it as
being written without sync (``staging_guard``), removes data files a killed writer left unfinished,
and finishes a commit whose last step a killed writer did not reach (``recover_staging``). Closing
syncs the staging environment, clears the mark and releases the lock, in that order. Writer checkouts
and merges both open one.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from hangarfs.engine import staging_guard
from hangarfs.engine.commit import recover_staging
from hangarfs.engine.lock import WriterLock
from hangarfs.engine.staging import StagingArea
from hangarfs.engine.store import RepoStore


def remove_unfinished_files(data_dir: Path) -> None:
    """Data files a killed writer left half-written (only the lock holder writes data files, and a
    file is named only once complete, so every temporary one is left over)."""
    for tmp in data_dir.glob('*/.*.tmp'):
        tmp.unlink(missing_ok=True)


class WriterSession:
    """The writer lock held, and the staging area ready to be written (see the module docstring)."""

    def __init__(self, store: RepoStore, **lock_info: Any) -> None:
        self.store = store
        self._lock = WriterLock(store.lock_path, store.path)
        self._lock.acquire(**lock_info)
        self._staging_dir = store.dir / 'staging'
        try:
            staging_guard.guard(self._staging_dir)
            staging_guard.mark_unsynced(self._staging_dir)
            remove_unfinished_files(store.data_dir)
            self.staging = StagingArea(store)
            recover_staging(store, self.staging)
        except BaseException:
            self._lock.release()
            raise

    @property
    def open(self) -> bool:
        return self._lock.held

    def close(self) -> None:
        """Make staged writes durable against power loss, then release the lock (idempotent)."""
        if not self._lock.held:
            return
        try:
            self.staging.env.sync()
            staging_guard.mark_synced(self._staging_dir)
        finally:
            self._lock.release()

    def __enter__(self) -> WriterSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
