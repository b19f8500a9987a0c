"""The writable staging mount on the mfusepy adapter (kept beside ``lowlevel_staging.py`` for benchmarks).

Reads as ``HangarfsOperations``; every change is translated into a ``WritableMountSource`` call (the
staging semantics live in ``staging_view.py``), exactly as ``lowlevel_staging.py`` does.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from typing import Any

from hangarfs.errors import HangarfsError
from hangarfs.fs.errnos import errno_for
from hangarfs.fs.fuselib import mfusepy, translated
from hangarfs.fs.mount import HangarfsOperations
from hangarfs.fs.view import MountSource, StagingView, WriteHandle

log = logging.getLogger('hangarfs.mount')


class StagingOperations(HangarfsOperations):
    """The writable staging mount: reads as HangarfsOperations, writes translated to a StagingView.

    A written file is staged when it is closed: errors from ``flush`` reach ``close()``, so a bad file
    fails there with EINVAL (or EIO), and its log line comes once, at release, if the file's last state
    failed too. Every other refusal (a name that breaks a rule, a link, a schema that does not fit) is
    logged once with the rule broken.
    """

    detach_old_versions = False  # files here change by writes through this very mount
    # refusals worth a log line; ENOENT, EEXIST, ENOTEMPTY and the like are ordinary answers, and EXDEV
    # (mv of a sample another column cannot hold) is followed by a copy whose close() logs the reason
    LOGGED_REFUSALS = frozenset(
        {errno.EINVAL, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.EIO, errno.EISDIR}
    )
    UTIME_NOW = (1 << 30) - 1  # libfuse's tv_nsec for "now" and for "leave unchanged"
    UTIME_OMIT = (1 << 30) - 2

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

    def destroy(self, path: str) -> None:
        dropped = self.staging.scratch_files()
        if dropped:
            log.warning(
                'dropped %d scratch file(s) never renamed onto a sample name: %s', len(dropped), dropped
            )
        super().destroy(path)

    def _dir_mode(self) -> int:
        return 0o755

    def _file_mode(self) -> int:
        return 0o644

    def handle_path(self, fh: int) -> str | None:
        handle = self._writes.get(fh)
        return handle.path if handle is not None else super().handle_path(fh)

    def _refusing(self, op: str, path: str | None, action: Callable[[], Any]) -> Any:
        """Run a change; a refusal is logged once, with its reason, and becomes an errno."""
        try:
            return action()
        except mfusepy.FuseOSError:
            raise
        except (HangarfsError, OSError, ValueError) as err:
            code = (
                errno_for(err)
                if not isinstance(err, ValueError) or isinstance(err, HangarfsError)
                else errno.EINVAL
            )
            if code in self.LOGGED_REFUSALS:
                log.warning('%s %s refused: %s', op, path, err)
            raise mfusepy.FuseOSError(code) from err

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
        handle = self._refusing('create', path, lambda: self.staging.create(path))
        return self._register(handle, fi)

    @translated
    def open(self, path: str, fi: Any) -> int:
        if (fi.flags & os.O_ACCMODE) == os.O_RDONLY:
            result: int = super().open(path, fi)
            fi.keep_cache = 0
            return result
        truncate = bool(fi.flags & os.O_TRUNC)
        handle = self._refusing('open', path, lambda: self.staging.open_write(path, truncate=truncate))
        return self._register(handle, fi)

    @translated
    def getattr(self, path: str | None, fh: Any = None) -> dict[str, int]:
        handle = self._write_handle(fh)
        if handle is not None:
            node = self.staging.lookup(handle.path)
            if node is not None:
                return self._stat(node)
        attrs: dict[str, int] = super().getattr(path, fh)
        return attrs

    @translated
    def read(self, path: str | None, size: int, offset: int, fh: Any) -> bytes:
        handle = self._write_handle(fh)
        if handle is not None:
            return handle.buffer.read(size, offset)
        data: bytes = super().read(path, size, offset, fh)
        return data

    @translated
    def write(self, path: str | None, data: bytes, offset: int, fh: Any) -> int:
        handle = self._write_handle(fh)
        if handle is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        return self.staging.write(handle, data, offset)

    @translated
    def truncate(self, path: str | None, length: int, fh: Any = None) -> int:
        assert path is not None
        self._refusing('truncate', path, lambda: self.staging.set_size(path, length))
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
        released: int = super().release(path, fh)
        return released

    @translated
    def unlink(self, path: str) -> int:
        self._refusing('unlink', path, lambda: self.staging.unlink(path))
        return 0

    @translated
    def rename(self, old: str, new: str, *flags: Any) -> int:
        self._refusing('rename', f'{old} -> {new}', lambda: self.staging.rename(old, new))
        return 0

    @translated
    def mkdir(self, path: str, mode: int) -> int:
        self._refusing('mkdir', path, lambda: self.staging.mkdir(path))
        return 0

    @translated
    def rmdir(self, path: str) -> int:
        self._refusing('rmdir', path, lambda: self.staging.rmdir(path))
        return 0

    @translated
    def chmod(self, path: str | None, mode: int) -> int:
        assert path is not None
        self._refusing('chmod', path, lambda: self.staging.set_mode(path, mode))
        return 0

    @translated
    def utimens(self, path: str | None, times: tuple[int, int] | None = None) -> int:
        """``times`` in ns from libfuse, whose tv_sec is unset for UTIME_NOW and UTIME_OMIT, so only
        the nanoseconds tell them: (tv_sec * 1e9 + UTIME_x) mod 1e9."""
        assert path is not None
        mtime = times[1] if times is not None else None
        rest = mtime % 1_000_000_000 if mtime is not None else None
        if rest == self.UTIME_OMIT - 1_000_000_000:
            return 0  # the mtime stays (touch -a)
        if rest == self.UTIME_NOW - 1_000_000_000:
            mtime = None  # now
        self._refusing('utimens', path, lambda: self.staging.set_times(path, mtime))
        return 0

    @translated
    def chown(self, path: str | None, uid: int, gid: int) -> int:
        """Files here belong to the mount's owner: chown to that owner (or -1) succeeds, else EPERM."""
        if path is not None and self.staging.lookup(path) is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        if uid not in (-1, self.uid) or gid not in (-1, self.gid):
            log.warning('chown %s refused: files here belong to uid %d gid %d', path, self.uid, self.gid)
            raise mfusepy.FuseOSError(errno.EPERM)
        return 0

    def setxattr(self, *args: Any) -> int:
        raise mfusepy.FuseOSError(errno.ENOTSUP)  # as cp -a and rsync -X expect of a filesystem without them

    removexattr = setxattr

    @translated
    def _no_links(self, target: str, source: str) -> int:
        log.warning('link %s refused: links are not supported in the staging mount; copy the file', target)
        raise mfusepy.FuseOSError(errno.EPERM)

    link = symlink = _no_links

    @translated
    def mknod(self, path: str, mode: int, dev: int) -> int:
        log.warning('mknod %s refused: only regular files and directories can be made here', path)
        raise mfusepy.FuseOSError(errno.EPERM)
