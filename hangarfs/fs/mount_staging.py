"""The writable staging mount on the mfusepy adapter (kept beside ``lowlevel_staging.py`` for benchmarks).

Reads as ``HangarfsOperations``; writes translated to a ``StagingView``.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from typing import Any

from hangarfs.errors import HangarfsError
from hangarfs.fs.fuselib import mfusepy
from hangarfs.fs.mount import HangarfsOperations, translated
from hangarfs.fs.view import MountSource, StagingView, WriteHandle

log = logging.getLogger('hangarfs.mount')


class StagingOperations(HangarfsOperations):
    """The writable staging mount: reads as HangarfsOperations, writes translated to a StagingView.

    A written file is staged when it is closed: errors from ``flush`` reach ``close()``, so a bad file
    fails there with EINVAL (or EIO) and a log line naming it, and stages nothing.
    """

    detach_old_versions = False  # files here change by writes through this very mount

    def __init__(
        self,
        source: MountSource,
        staging: StagingView,
        *,
        mountpoint: str,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(source, mountpoint=mountpoint, on_ready=on_ready)
        self.staging = staging
        self._writes: dict[int, WriteHandle] = {}

    def _timeout(self) -> float:
        return 0.0  # every change is made through us, and a refused file must vanish at once

    def init_with_config(self, conn: Any, config: Any) -> None:
        super().init_with_config(conn, config)
        if config is not None:
            # A name absent now can only appear through this mount, which tells the kernel at once.
            config.negative_timeout = 1.0

    def _dir_mode(self) -> int:
        return 0o755

    def _file_mode(self) -> int:
        return 0o644

    def _write_handle(self, fh: Any) -> WriteHandle | None:
        return self._writes.get(getattr(fh, 'fh', 0)) if fh is not None else None

    def _register(self, handle: WriteHandle, fi: Any) -> int:
        fh = next(self._ids)
        self._writes[fh] = handle
        fi.fh = fh
        fi.keep_cache = 0
        return 0

    @translated
    def create(self, path: str, mode: int, fi: Any) -> int:
        return self._register(self.staging.create(path), fi)

    @translated
    def open(self, path: str, fi: Any) -> int:
        if (fi.flags & os.O_ACCMODE) == os.O_RDONLY:
            result = super().open(path, fi)
            fi.keep_cache = 0
            return result
        return self._register(self.staging.open_write(path, truncate=bool(fi.flags & os.O_TRUNC)), fi)

    @translated
    def getattr(self, path: str | None, fh: Any = None) -> dict[str, int]:
        handle = self._write_handle(fh)
        if handle is not None:
            node = self.staging.lookup(handle.path)
            if node is not None:
                return self._stat(node)
        return super().getattr(path, fh)

    @translated
    def read(self, path: str | None, size: int, offset: int, fh: Any) -> bytes:
        handle = self._write_handle(fh)
        if handle is not None:
            return handle.buffer.read(size, offset)
        return super().read(path, size, offset, fh)

    @translated
    def write(self, path: str | None, data: bytes, offset: int, fh: Any) -> int:
        handle = self._write_handle(fh)
        if handle is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        return self.staging.write(handle, data, offset)

    @translated
    def truncate(self, path: str | None, length: int, fh: Any = None) -> int:
        assert path is not None
        handles = self.staging._writing.get(path)
        if handles:  # ftruncate of a file being written: the newest handle's bytes
            self.staging.truncate(handles[-1], length)
        else:
            self._staged(path, lambda: self.staging.set_size(path, length))
        return 0

    @translated
    def flush(self, path: str | None, fh: Any) -> int:
        # Every close() of a duplicated descriptor flushes, so a failure here may be a state the file
        # is about to leave (a shell redirect flushes the empty file first): the caller gets the errno
        # now, the log line comes at release if the file's last state failed too.
        handle = self._write_handle(fh)
        if handle is not None:
            self.staging.flush(handle)
        return 0

    @translated
    def fsync(self, path: str | None, datasync: int, fh: Any) -> int:
        handle = self._write_handle(fh)
        if handle is not None:
            self.staging.flush(handle)
        self.staging.sync()
        return 0

    @translated
    def release(self, path: str | None, fh: Any) -> int:
        handle = self._writes.pop(getattr(fh, 'fh', 0), None)
        if handle is not None:
            failure = self.staging.release(handle)
            if failure is not None:
                log.warning('%s: not staged: %s', handle.path, failure)
            return 0
        return super().release(path, fh)

    def _staged(self, path: str, action: Callable[[], None]) -> None:
        """Stage, logging a refusal with the file's name and the reason (the caller gets the errno)."""
        try:
            action()
        except HangarfsError as err:
            log.warning('%s: not staged: %s', path, err)
            raise
        except (OSError, ValueError) as err:
            log.warning('%s: not staged: %s', path, err)
            raise

    @translated
    def unlink(self, path: str) -> int:
        self.staging.unlink(path)
        return 0

    @translated
    def rename(self, old: str, new: str, *flags: Any) -> int:
        self._staged(new, lambda: self.staging.rename(old, new))
        return 0

    @translated
    def mkdir(self, path: str, mode: int) -> int:
        self.staging.mkdir(path)
        return 0

    @translated
    def rmdir(self, path: str) -> int:
        self.staging.rmdir(path)
        return 0

    @translated
    def _accept(self, path: str | None, *args: Any) -> int:
        """chmod, chown and utimens change nothing here, but tools like ``cp -p`` and ``rsync -a`` ask."""
        if path is not None and self.staging.lookup(path) is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        return 0

    chmod = chown = utimens = _accept
