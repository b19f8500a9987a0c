"""The writable staging mount on the low-level adapter: the kernel's requests as ``StagingView`` calls.

Files here change through this very mount, so the kernel caches nothing (zero timeouts, no kept
pages, listings not cached) and numbers stand for paths, not versions; a name that is absent now can
only appear through the mount, which the kernel sees, so negative answers are cached for a second.
A written file is staged when it is closed: ``FLUSH`` errors reach ``close()``, so a bad file fails
there with EINVAL (or EIO) and a log line naming it, and stages nothing (see ``StagingView.flush``).
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
from collections.abc import Callable
from typing import Any

from hangarfs.errors import HangarfsError
from hangarfs.fs import kernel as k
from hangarfs.fs.inodes import join
from hangarfs.fs.lowlevel import LowLevelFS, Policy
from hangarfs.fs.view import MountSource, Node, StagingView, WriteHandle

log = logging.getLogger('hangarfs.mount')

NOTHING = k.Timeout(0, 0)
STAGING_POLICY = Policy(
    entry=NOTHING,
    attr=NOTHING,
    negative=k.Timeout(1, 0),
    positional=False,
    by_version=False,
    writable=True,
    dir_mode=0o755,
    file_mode=0o644,
)


def _names(body: memoryview, count: int) -> list[str]:
    """``count`` NUL-terminated names from the end of a request."""
    return [bytes(p).decode('utf-8', 'surrogateescape') for p in bytes(body).split(b'\0')[:count]]


class StagingFS(LowLevelFS):
    """Serves a ``StagingView`` (``source`` is the same view, wrapped for ``.hangarfs/mount.json``)."""

    def __init__(
        self,
        source: MountSource,
        staging: StagingView,
        *,
        mountpoint: str,
        on_ready: Callable[[], None] | None = None,
        debug: bool = False,
    ) -> None:
        super().__init__(source, mountpoint=mountpoint, on_ready=on_ready, policy=STAGING_POLICY, debug=debug)
        self.staging = staging
        self._ids = itertools.count(1)
        self._reads: dict[int, Node] = {}  # read-only handle -> the node it opened
        self._writes: dict[int, WriteHandle] = {}
        self.handlers.update(
            {
                k.OPEN: self.op_open,
                k.OPENDIR: self.op_opendir,
                k.SETATTR: self.op_setattr,
                k.CREATE: self.op_create,
                k.WRITE: self.op_write,
                k.FLUSH: self.op_flush,
                k.FSYNC: self.op_fsync,
                k.UNLINK: self.op_unlink,
                k.RMDIR: self.op_rmdir,
                k.MKDIR: self.op_mkdir,
                k.RENAME: self.op_rename,
                k.RENAME2: self.op_rename2,
                k.SYMLINK: self.op_no_links,
                k.LINK: self.op_no_links,
                k.MKNOD: self.op_no_links,
            }
        )

    def answers(self) -> dict[int, int]:
        """Files open and close here, and xattr writes are refused (ENOTSUP, as cp -a and rsync -X take)."""
        return {
            k.ACCESS: errno.ENOSYS,
            k.GETXATTR: errno.ENOSYS,
            k.LISTXATTR: errno.ENOSYS,
            k.SETXATTR: errno.EOPNOTSUPP,
            k.REMOVEXATTR: errno.EOPNOTSUPP,
            k.IOCTL: errno.ENOTTY,
        }

    # ------------------------------------------------------------------ nodes: always the current state

    def node_of(self, ino: int) -> tuple[str, Node]:
        path = self.table.path_of(ino)
        node = self.source.lookup(path) if path else None
        if path is None or node is None:
            raise k.FuseError(errno.ENOENT)
        return path, node

    def _path(self, ino: int) -> str:
        path = self.table.path_of(ino)
        if not path:
            raise k.FuseError(errno.ENOENT)
        return path

    def _reply_entry(self, unique: int, path: str, extra: bytes = b'') -> None:
        node = self.source.lookup(path)
        if node is None:
            raise k.FuseError(errno.ENOENT)
        assert self.ch is not None
        self.ch.reply(unique, self.entry_out(self.new_entry(path, node), node), extra)

    def _reply_attr(self, unique: int, ino: int, node: Node) -> None:
        assert self.ch is not None
        self.ch.reply(unique, k.ATTR_OUT.pack(0, 0, 0, *self.attr_of(ino, node)))

    def _staged(self, path: str, action: Callable[[], Any]) -> Any:
        """Stage, logging a refusal with the file's name and the reason (the caller gets the errno)."""
        try:
            return action()
        except (HangarfsError, OSError, ValueError) as err:
            log.warning('%s: not staged: %s', path, err)
            raise

    def _ok(self, unique: int) -> None:
        assert self.ch is not None
        self.ch.reply(unique)

    # ------------------------------------------------------------------ files

    def op_open(self, unique: int, nodeid: int, body: memoryview) -> None:
        flags = k.OPEN_IN.unpack_from(body)[0]
        path, node = self.node_of(nodeid)
        if node.is_dir:
            raise k.FuseError(errno.EISDIR)
        fh = next(self._ids)
        if (flags & os.O_ACCMODE) == os.O_RDONLY:
            self._reads[fh] = node
        else:
            self._writes[fh] = self.staging.open_write(path, truncate=bool(flags & os.O_TRUNC))
        assert self.ch is not None
        self.ch.reply(unique, k.OPEN_OUT.pack(fh, 0, 0))

    def op_create(self, unique: int, nodeid: int, body: memoryview) -> None:
        name = _names(body[k.CREATE_IN.size :], 1)[0]
        path = join(self.dir_path(nodeid), name)
        handle = self._staged(path, lambda: self.staging.create(path))
        fh = next(self._ids)
        self._writes[fh] = handle
        self._reply_entry(unique, path, k.OPEN_OUT.pack(fh, 0, 0))

    def read_node(self, nodeid: int, fh: int) -> Node:
        node = self._reads.get(fh)
        if node is not None:
            return node
        handle = self._writes.get(fh)
        if handle is not None:
            return Node('file', handle.buffer.size, 0, b'', buffer=handle.buffer)
        return self.node_of(nodeid)[1]

    def op_write(self, unique: int, nodeid: int, body: memoryview) -> None:
        fh, offset, size = k.WRITE_IN.unpack_from(body)[:3]
        handle = self._writes.get(fh)
        if handle is None:
            raise k.FuseError(errno.EBADF)
        data = body[k.WRITE_IN.size : k.WRITE_IN.size + size]
        written = self.staging.write(handle, data, offset)  # type: ignore[arg-type]
        assert self.ch is not None
        self.ch.reply(unique, k.WRITE_OUT.pack(written, 0))

    def op_flush(self, unique: int, nodeid: int, body: memoryview) -> None:
        # Every close() of a duplicated descriptor flushes, so a failure here may be a state the file
        # is about to leave (a shell redirect flushes the empty file first): the caller gets the errno
        # now, the log line comes at release if the file's last state failed too.
        handle = self._writes.get(k.FLUSH_IN.unpack_from(body)[0])
        if handle is not None:
            self.staging.flush(handle)
        self._ok(unique)

    def op_fsync(self, unique: int, nodeid: int, body: memoryview) -> None:
        handle = self._writes.get(k.FSYNC_IN.unpack_from(body)[0])
        if handle is not None:
            self.staging.flush(handle)
        self.staging.sync()
        self._ok(unique)

    def op_release(self, unique: int, nodeid: int, body: memoryview) -> None:
        fh = k.RELEASE_IN.unpack_from(body)[0]
        self._reads.pop(fh, None)
        handle = self._writes.pop(fh, None)
        if handle is not None:
            failure = self.staging.release(handle)
            if failure is not None:
                log.warning('%s: not staged: %s', handle.path, failure)
        self._ok(unique)

    def op_setattr(self, unique: int, nodeid: int, body: memoryview) -> None:
        fields = k.SETATTR_IN.unpack_from(body)
        valid, fh, size = fields[0], fields[2], fields[3]
        path = self._path(nodeid)
        if valid & k.FATTR_SIZE:
            handle = self._writes.get(fh) if valid & k.FATTR_FH else None
            handles = self.staging._writing.get(path)
            if handle is None and handles:
                handle = handles[-1]  # ftruncate of a file being written: the newest handle's bytes
            if handle is not None:
                self.staging.truncate(handle, size)
            else:
                self._staged(path, lambda: self.staging.set_size(path, size))
        # chmod, chown and utimens change nothing here, but tools like ``cp -p`` and ``rsync -a`` ask
        _, node = self.node_of(nodeid)
        self._reply_attr(unique, nodeid, node)

    def getattr_node(self, nodeid: int, body: memoryview) -> Node:
        flags, _, fh = k.GETATTR_IN.unpack_from(body)
        handle = self._writes.get(fh) if flags & 1 else None  # FUSE_GETATTR_FH: fstat of an open file
        if handle is not None:
            node = self.staging.lookup(handle.path)
            if node is not None:
                return node
        return self.node_of(nodeid)[1]

    # ------------------------------------------------------------------ names and directories

    def op_opendir(self, unique: int, nodeid: int, body: memoryview) -> None:
        node = self.node_of(nodeid)[1]
        if not node.is_dir:
            raise k.FuseError(errno.ENOTDIR)
        assert self.ch is not None
        self.ch.reply(unique, k.OPEN_OUT.pack(next(self._ids), 0, 0))  # listings not cached

    def op_unlink(self, unique: int, nodeid: int, body: memoryview) -> None:
        path = join(self.dir_path(nodeid), _names(body, 1)[0])
        self.staging.unlink(path)
        self.table.removed(path)
        self._ok(unique)

    def op_rmdir(self, unique: int, nodeid: int, body: memoryview) -> None:
        path = join(self.dir_path(nodeid), _names(body, 1)[0])
        self.staging.rmdir(path)
        self.table.removed(path)
        self._ok(unique)

    def op_mkdir(self, unique: int, nodeid: int, body: memoryview) -> None:
        path = join(self.dir_path(nodeid), _names(body[k.MKDIR_IN.size :], 1)[0])
        self.staging.mkdir(path)
        self._reply_entry(unique, path)

    def op_rename(self, unique: int, nodeid: int, body: memoryview) -> None:
        newdir = k.RENAME_IN.unpack_from(body)[0]
        self._rename(unique, nodeid, newdir, 0, body[k.RENAME_IN.size :])

    def op_rename2(self, unique: int, nodeid: int, body: memoryview) -> None:
        newdir, flags, _ = k.RENAME2_IN.unpack_from(body)
        self._rename(unique, nodeid, newdir, flags, body[k.RENAME2_IN.size :])

    def _rename(self, unique: int, olddir: int, newdir: int, flags: int, names: memoryview) -> None:
        if flags & k.RENAME_EXCHANGE:
            raise k.FuseError(errno.EINVAL)
        old_name, new_name = _names(names, 2)
        old, new = join(self.dir_path(olddir), old_name), join(self.dir_path(newdir), new_name)
        if flags & k.RENAME_NOREPLACE and self.staging.lookup(new) is not None:
            raise k.FuseError(errno.EEXIST)
        self._staged(new, lambda: self.staging.rename(old, new))
        self.table.moved(old, new)
        self._ok(unique)

    def op_no_links(self, unique: int, nodeid: int, body: memoryview) -> None:
        raise k.FuseError(errno.EROFS)
