"""The writable staging mount on the low-level adapter: the kernel's requests as ``StagingView`` calls.

Files here change through this very mount, so the kernel caches nothing (zero timeouts, no kept
pages, listings not cached) and numbers stand for paths, not versions; a name that is absent now can
only appear through the mount, which the kernel sees, so negative answers are cached for a second.

Every rule lives in the view (``staging_view.py`` and its parts); this module translates, as the
mfusepy adapter's ``mount_staging.py`` does: SETATTR becomes ``set_times``/``set_mode``/``truncate``,
STATFS ``usage``, xattr writes ENOTSUP (what ``cp -a`` and ``rsync -X`` take from a filesystem without
them), links and device nodes EPERM. A written file is staged when it is closed: ``FLUSH`` errors reach
``close()``, so a bad file fails there with EINVAL (or EIO) and its log line comes once, at RELEASE, if
the file's last state failed too. Every other refusal is logged once, with the rule it breaks.
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
from hangarfs.fs.errnos import errno_for
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
# refusals worth a log line; ENOENT, EEXIST, ENOTEMPTY and the like are ordinary answers, and EXDEV
# (mv of a sample another column cannot hold) is followed by a copy whose close() logs the reason
LOGGED_REFUSALS = frozenset(
    {errno.EINVAL, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.EIO, errno.EISDIR}
)
GETATTR_FH = 1  # FUSE_GETATTR_FH: an fstat of an open file
UNCHANGED = 0xFFFFFFFF  # a uid or gid of -1 in chown


def _names(body: memoryview, count: int) -> list[str]:
    """``count`` NUL-terminated names from the end of a request."""
    return [bytes(p).decode('utf-8', 'surrogateescape') for p in bytes(body).split(b'\0')[:count]]


def refusing(op: str, what: str, action: Callable[[], Any]) -> Any:
    """Run a change; a refusal is logged once, with its reason, and becomes the errno it stands for."""
    try:
        return action()
    except k.FuseError:
        raise
    except (HangarfsError, OSError, ValueError) as err:
        plain_value_error = isinstance(err, ValueError) and not isinstance(err, HangarfsError)
        code = errno.EINVAL if plain_value_error else errno_for(err)
        if code in LOGGED_REFUSALS:
            log.warning('%s %s refused: %s', op, what, err)
        raise k.FuseError(code) from err


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
                k.SYMLINK: self.op_symlink,
                k.LINK: self.op_link,
                k.MKNOD: self.op_mknod,
            }
        )

    def answers(self) -> dict[int, int]:
        """Files open and close here, and xattr writes are refused (ENOTSUP, as cp -a and rsync -X take)."""
        return {
            k.ACCESS: errno.ENOSYS,
            k.GETXATTR: errno.ENOSYS,
            k.LISTXATTR: errno.ENOSYS,
            k.SETXATTR: errno.ENOTSUP,
            k.REMOVEXATTR: errno.ENOTSUP,
            k.IOCTL: errno.ENOTTY,
        }

    def ready_cleanup(self) -> None:
        dropped = self.staging.scratch_files()
        if dropped:
            log.warning(
                'dropped %d scratch file(s) never renamed onto a sample name: %s', len(dropped), dropped
            )

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

    def _ok(self, unique: int) -> None:
        assert self.ch is not None
        self.ch.reply(unique)

    def _register(self, handle: WriteHandle) -> int:
        fh = next(self._ids)
        self._writes[fh] = handle
        return fh

    # ------------------------------------------------------------------ files

    def op_open(self, unique: int, nodeid: int, body: memoryview) -> None:
        flags = k.OPEN_IN.unpack_from(body)[0]
        path, node = self.node_of(nodeid)
        if node.is_dir:
            raise k.FuseError(errno.EISDIR)
        if (flags & os.O_ACCMODE) == os.O_RDONLY:
            fh = next(self._ids)
            self._reads[fh] = node
        else:
            truncate = bool(flags & os.O_TRUNC)
            fh = self._register(
                refusing('open', path, lambda: self.staging.open_write(path, truncate=truncate))
            )
        assert self.ch is not None
        self.ch.reply(unique, k.OPEN_OUT.pack(fh, 0, 0))

    def op_create(self, unique: int, nodeid: int, body: memoryview) -> None:
        name = _names(body[k.CREATE_IN.size :], 1)[0]
        path = join(self.dir_path(nodeid), name)
        fh = self._register(refusing('create', path, lambda: self.staging.create(path)))
        try:
            self._reply_entry(unique, path, k.OPEN_OUT.pack(fh, 0, 0))
        except BaseException:
            self.staging.release(self._writes.pop(fh))
            raise

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
        """chmod, chown, truncate and utimensat, each as the view's call (several may come at once)."""
        valid, _, fh, size, _, _, mtime, _, _, mtimensec, _, mode, _, uid, gid, _ = k.SETATTR_IN.unpack_from(
            body
        )
        path = self._path(nodeid)
        if valid & (k.FATTR_UID | k.FATTR_GID):
            self._chown(
                path, uid if valid & k.FATTR_UID else UNCHANGED, gid if valid & k.FATTR_GID else UNCHANGED
            )
        if valid & k.FATTR_SIZE:
            handle = self._writes.get(fh) if valid & k.FATTR_FH else None
            if handle is not None:  # ftruncate of an open file: that file's bytes
                refusing('truncate', path, lambda: self.staging.truncate(handle, size))
            else:
                refusing('truncate', path, lambda: self.staging.set_size(path, size))
        if valid & k.FATTR_MODE:
            refusing('chmod', path, lambda: self.staging.set_mode(path, mode))
        if valid & k.FATTR_MTIME_NOW:
            refusing('utimens', path, lambda: self.staging.set_times(path, None))
        elif valid & k.FATTR_MTIME:  # an atime alone (touch -a) changes nothing kept here
            mtime_ns = mtime * 1_000_000_000 + mtimensec
            refusing('utimens', path, lambda: self.staging.set_times(path, mtime_ns))
        node = self._current(nodeid, fh if valid & k.FATTR_FH else None)
        assert self.ch is not None
        self.ch.reply(unique, k.ATTR_OUT.pack(0, 0, 0, *self.attr_of(nodeid, node)))

    def _chown(self, path: str, uid: int, gid: int) -> None:
        """Files here belong to the mount's owner: chown to that owner (or -1) succeeds, else EPERM."""
        if uid not in (UNCHANGED, self.uid) or gid not in (UNCHANGED, self.gid):
            log.warning('chown %s refused: files here belong to uid %d gid %d', path, self.uid, self.gid)
            raise k.FuseError(errno.EPERM)

    def getattr_node(self, nodeid: int, body: memoryview) -> Node:
        flags, _, fh = k.GETATTR_IN.unpack_from(body)
        return self._current(nodeid, fh if flags & GETATTR_FH else None)

    def _current(self, nodeid: int, fh: int | None) -> Node:
        """What a number (or an open file, for fstat) shows now."""
        handle = self._writes.get(fh) if fh is not None else None
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
        refusing('unlink', path, lambda: self.staging.unlink(path))
        self.table.removed(path)
        self._ok(unique)

    def op_rmdir(self, unique: int, nodeid: int, body: memoryview) -> None:
        path = join(self.dir_path(nodeid), _names(body, 1)[0])
        refusing('rmdir', path, lambda: self.staging.rmdir(path))
        self.table.removed(path)
        self._ok(unique)

    def op_mkdir(self, unique: int, nodeid: int, body: memoryview) -> None:
        path = join(self.dir_path(nodeid), _names(body[k.MKDIR_IN.size :], 1)[0])
        refusing('mkdir', path, lambda: self.staging.mkdir(path))
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
        refusing('rename', f'{old} -> {new}', lambda: self.staging.rename(old, new))
        self.table.moved(old, new)
        self._ok(unique)

    def op_symlink(self, unique: int, nodeid: int, body: memoryview) -> None:
        name = _names(body, 1)[0]  # SYMLINK carries the new name, then the target
        self._no_links(join(self.dir_path(nodeid), name))

    def op_link(self, unique: int, nodeid: int, body: memoryview) -> None:
        self._no_links(join(self.dir_path(nodeid), _names(body[8:], 1)[0]))  # after fuse_link_in

    def _no_links(self, path: str) -> None:
        log.warning('link %s refused: links are not supported in the staging mount; copy the file', path)
        raise k.FuseError(errno.EPERM)

    def op_mknod(self, unique: int, nodeid: int, body: memoryview) -> None:
        path = join(self.dir_path(nodeid), _names(body[16:], 1)[0])  # after fuse_mknod_in
        log.warning('mknod %s refused: only regular files and directories can be made here', path)
        raise k.FuseError(errno.EPERM)
