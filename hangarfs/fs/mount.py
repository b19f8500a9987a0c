"""The FUSE adapter: translates FUSE operations into ``MountSource`` calls, nothing more.

On an immutable view (a commit or tag) it tells the kernel to cache everything: long entry and
attribute timeouts, and ENOSYS from ``open``/``opendir`` so that the kernel stops sending opens and
releases and keeps pages and listings cached (FUSE's no-open mode). On a moving view (a branch) each
open pins the node it opened, so a handle keeps reading its version, and the page cache is kept only
when the version at that path is the one the kernel last cached. Listings stream with offsets, so a
directory of millions of samples needs bounded memory; directories up to ``READDIRPLUS_LIMIT``
entries answer READDIRPLUS with their attributes, so ``find``/``ls -l`` need no lookup per file.
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hangarfs.errors import (
    ClosedError,
    CorruptData,
    DataNotLocal,
    HangarfsError,
    InvalidKey,
    ReadOnlyError,
    RefNotFound,
    SampleNotFound,
    SchemaMismatch,
    WriterLockHeld,
)
from hangarfs.fs.fuselib import mfusepy
from hangarfs.fs.npy import NpyFormatError
from hangarfs.fs.view import MountSource, Node

log = logging.getLogger('hangarfs.mount')

FOREVER = 365 * 24 * 3600.0
BRANCH_TIMEOUT = 0.5  # with BranchView.refresh = 0.5 s, a new commit shows within 1 s
READDIRPLUS_LIMIT = 300_000  # above this, listings carry no attributes (libfuse keeps a node per entry)
MAX_IO = 1 << 20
FUSE_READDIR_PLUS = 1
FUSE_FILL_DIR_PLUS = 2

# hangarfs errors -> errno; anything not listed is logged and becomes EIO
ERRNO_TABLE: list[tuple[type[BaseException], int]] = [
    (SampleNotFound, errno.ENOENT),
    (RefNotFound, errno.ENOENT),
    (ReadOnlyError, errno.EROFS),
    (WriterLockHeld, errno.EBUSY),
    (InvalidKey, errno.EINVAL),
    (SchemaMismatch, errno.EINVAL),
    (NpyFormatError, errno.EINVAL),
    (DataNotLocal, errno.EIO),
    (CorruptData, errno.EIO),
    (ClosedError, errno.EIO),
]


def errno_for(err: BaseException) -> int:
    for cls, code in ERRNO_TABLE:
        if isinstance(err, cls):
            return code
    if isinstance(err, OSError) and err.errno:
        return err.errno
    return errno.EIO


def translated(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a FUSE operation, turning exceptions into errnos (unexpected ones are logged)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any) -> Any:
        try:
            return method(self, *args)
        except mfusepy.FuseOSError:
            raise
        except HangarfsError as err:
            code = errno_for(err)
            if code == errno.EIO:
                log.error('%s %s: %s', method.__name__, args[0] if args else '', err)
            raise mfusepy.FuseOSError(code) from err
        except OSError as err:
            log.error('%s %s: %s', method.__name__, args[0] if args else '', err)
            raise mfusepy.FuseOSError(err.errno or errno.EIO) from err
        except Exception as err:
            log.exception('%s %s failed', method.__name__, args[0] if args else '')
            raise mfusepy.FuseOSError(errno.EIO) from err

    return wrapper


@dataclass
class _Listing:
    """A directory listing in progress: the stream, and the offset of its next entry."""

    path: str
    node: Node
    entries: Iterator[tuple[str, Node | None]]
    next_offset: int
    plus: bool
    pending: tuple[str, Node | None] | None = None


class _LRU(OrderedDict[Any, Any]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.lock = threading.Lock()

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self[key] = value
            self.move_to_end(key)
            while len(self) > self.limit:
                self.popitem(last=False)

    def take(self, key: Any) -> Any:
        with self.lock:
            return self.pop(key, None)


class HangarfsOperations(mfusepy.Operations):
    """FUSE operations over a MountSource (read-only; see ``write.py`` for the staging mount)."""

    use_ns = True

    def __init__(self, source: MountSource, *, on_ready: Callable[[], None] | None = None) -> None:
        self.source = source
        self.immutable = source.is_immutable()
        self.on_ready = on_ready
        self.uid = os.getuid()
        self.gid = os.getgid()
        self._handles: dict[int, Node] = {}
        self._ids = itertools.count(1)
        self._listings: dict[int, _Listing] = {}
        self._continuations = _LRU(64)  # (path, offset) -> _Listing, when there is no opendir handle
        self._cached_versions = _LRU(200_000)  # path -> version the kernel last cached (moving views)

    # ---------------------------------------------------------------------------- setup

    def init_with_config(self, conn: Any, config: Any) -> None:
        if config is not None:
            timeout = FOREVER if self.immutable else BRANCH_TIMEOUT
            config.entry_timeout = timeout
            config.attr_timeout = timeout
            config.negative_timeout = timeout
            config.kernel_cache = 1 if self.immutable else 0
            config.use_ino = 0
        if conn is not None:
            conn.max_readahead = MAX_IO
            if hasattr(conn, 'max_read'):
                conn.max_read = MAX_IO
        log.info('mounted: %s', self.source.describe())
        if self.on_ready is not None:
            self.on_ready()

    def destroy(self, path: str) -> None:
        log.info('unmounted')

    # ---------------------------------------------------------------------------- attributes

    def _stat(self, node: Node) -> dict[str, int]:
        if node.is_dir:
            mode = stat.S_IFDIR | self._dir_mode()
            nlink = 2
        else:
            mode = stat.S_IFREG | self._file_mode()
            nlink = 1
        return {
            'st_mode': mode,
            'st_nlink': nlink,
            'st_size': node.size,
            'st_blocks': (node.size + 511) // 512,
            'st_uid': self.uid,
            'st_gid': self.gid,
            'st_mtime': node.mtime_ns,
            'st_ctime': node.mtime_ns,
            'st_atime': node.mtime_ns,
        }

    def _dir_mode(self) -> int:
        return 0o555

    def _file_mode(self) -> int:
        return 0o444

    def _lookup(self, path: str) -> Node:
        node = self.source.lookup(path)
        if node is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        return node

    @translated
    def getattr(self, path: str, fh: Any = None) -> dict[str, int]:
        if fh is not None:
            node = self._handles.get(getattr(fh, 'fh', 0))
            if node is not None:
                return self._stat(node)
        return self._stat(self._lookup(path))

    @translated
    def statfs(self, path: str) -> dict[str, int]:
        return {
            'f_bsize': 4096,
            'f_frsize': 4096,
            'f_blocks': 0,
            'f_bfree': 0,
            'f_bavail': 0,
            'f_namemax': 255,
        }

    # ---------------------------------------------------------------------------- files

    @translated
    def open(self, path: str, fi: Any) -> int:
        if (fi.flags & os.O_ACCMODE) != os.O_RDONLY:
            raise mfusepy.FuseOSError(errno.EROFS)
        if self.immutable:
            raise mfusepy.FuseOSError(errno.ENOSYS)  # no-open mode: the kernel stops asking
        node = self._lookup(path)
        if node.is_dir:
            raise mfusepy.FuseOSError(errno.EISDIR)
        fh = next(self._ids)
        self._handles[fh] = node
        fi.fh = fh
        fi.keep_cache = 1 if self._cached_versions.get(path) == node.version else 0
        self._cached_versions.put(path, node.version)
        return 0

    @translated
    def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
        node = self._handles.get(getattr(fh, 'fh', 0)) if fh is not None else None
        if node is None:
            node = self._lookup(path)
        return self.source.read(node, size, offset)

    @translated
    def release(self, path: str, fh: Any) -> int:
        self._handles.pop(getattr(fh, 'fh', 0), None)
        return 0

    # ---------------------------------------------------------------------------- directories

    @translated
    def opendir(self, path: str) -> int:
        # Not ENOSYS even when immutable: libfuse's high-level API keeps its own directory handle and
        # crashes on READDIR without one. HangarfsFUSE.opendir asks the kernel to cache listings instead.
        node = self._lookup(path)
        if not node.is_dir:
            raise mfusepy.FuseOSError(errno.ENOTDIR)
        return next(self._ids)

    @translated
    def releasedir(self, path: str, fh: int) -> int:
        self._listings.pop(fh, None)
        return 0

    def readdir(self, path: str, fh: int) -> list[str]:  # registered so libfuse calls fill_dir below
        raise mfusepy.FuseOSError(errno.ENOSYS)

    @translated
    def fill_dir(self, path: str, buf: Any, filler: Any, offset: int, fh: int, plus_wanted: bool) -> int:
        """Stream entries into libfuse's buffer from ``offset``; resume where the buffer filled up."""
        listing = self._listings.get(fh) if fh else self._continuations.take((path, offset))
        if listing is None or listing.next_offset != offset:
            listing = self._start_listing(path, offset, plus_wanted)
        st = mfusepy.c_stat()
        mfusepy.set_st_attrs(st, self._stat(listing.node), use_ns=True)
        st.st_ino = 1  # libfuse passes st_ino through for '.' and '..'; readdir() hides inode 0
        dir_mode = stat.S_IFDIR | self._dir_mode()
        file_mode = stat.S_IFREG | self._file_mode()
        flags = FUSE_FILL_DIR_PLUS if listing.plus else 0
        full = False
        while True:
            item = listing.pending
            listing.pending = None
            if item is None:
                item = next(listing.entries, None)
                if item is None:
                    break
            name, node = item
            if node is not None:
                st.st_mode = dir_mode if node.is_dir else file_mode
                st.st_size = node.size
                st.st_blocks = (node.size + 511) // 512
                st.st_nlink = 2 if node.is_dir else 1
            else:
                st.st_mode = dir_mode if name in ('.', '..') else file_mode
            if filler(buf, name.encode('utf-8', 'surrogateescape'), st, listing.next_offset + 1, flags) != 0:
                listing.pending = item
                full = True
                break
            listing.next_offset += 1
        if fh:
            self._listings[fh] = listing
        elif full:
            self._continuations.put((path, listing.next_offset), listing)
        return 0

    def _start_listing(self, path: str, offset: int, plus_wanted: bool) -> _Listing:
        node = self._lookup(path)
        if not node.is_dir:
            raise mfusepy.FuseOSError(errno.ENOTDIR)
        plus = plus_wanted and (node.entries is None or node.entries <= READDIRPLUS_LIMIT)
        entries = self.source.list(path, with_nodes=plus)
        if entries is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        dots: Iterator[tuple[str, Node | None]] = iter([('.', node), ('..', None)])
        stream = itertools.chain(dots, entries)
        for _ in range(offset):  # a seek back (rare): start over and skip
            if next(stream, None) is None:
                break
        return _Listing(path, node, stream, offset, plus)


class HangarfsFUSE(mfusepy.FUSE):
    """mfusepy's FUSE with our own readdir loop (streaming offsets, READDIRPLUS attributes) and
    directory handles that let the kernel cache listings of an immutable view."""

    def opendir(self, path: bytes, fip: Any) -> int:
        fi = fip.contents
        fi.fh = self.operations.opendir(path.decode(self.encoding, self.errors))
        if self.operations.immutable:
            fi.cache_readdir = 1
            fi.keep_cache = 1
        return 0

    def readdir_fuse_3(
        self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any, flags: int
    ) -> int:
        decoded = path.decode(self.encoding, self.errors) if path is not None else '/'
        try:
            return self.operations.fill_dir(
                decoded, buf, filler, offset, fip.contents.fh, bool(flags & FUSE_READDIR_PLUS)
            )
        except mfusepy.FuseOSError as err:
            return -(err.errno or errno.EIO)


def serve(
    operations: HangarfsOperations,
    mountpoint: str,
    *,
    read_only: bool = True,
    foreground_debug: bool = False,
) -> None:
    """Mount and serve until unmounted or signalled (SIGTERM/SIGINT unmount cleanly)."""
    options: dict[str, Any] = {
        'fsname': 'hangarfs',
        'subtype': 'hangarfs',
        'max_read': MAX_IO,
        'default_permissions': True,
    }
    if read_only:
        options['ro'] = True
    HangarfsFUSE(operations, mountpoint, foreground=True, raw_fi=True, debug=foreground_debug, **options)
