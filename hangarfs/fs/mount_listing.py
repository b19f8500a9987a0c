"""Directory listings of the mfusepy adapter: streamed with offsets, with attributes (READDIRPLUS).

A directory of millions of samples is listed with bounded memory: each listing is a stream resumed
at the offset the kernel asks for next; directories up to ``READDIRPLUS_LIMIT`` entries answer
READDIRPLUS with every entry's attributes, so ``find``/``ls -l`` need no lookup per file. On an
immutable view :class:`HangarfsFUSE` lets the kernel cache listings (``cache_readdir``).
"""

from __future__ import annotations

import errno
import itertools
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hangarfs.fs.fuselib import mfusepy, translated
from hangarfs.fs.nodes import DIR_HINT
from hangarfs.fs.view import MountSource, Node

READDIRPLUS_LIMIT = 300_000  # above this, listings carry no attributes (libfuse keeps a node per entry)
FUSE_READDIR_PLUS = 1
FUSE_FILL_DIR_PLUS = 2


@dataclass
class _Listing:
    """A directory listing in progress: the stream, and the offset of its next entry."""

    path: str
    node: Node
    entries: Iterator[tuple[str, Node | None]]
    next_offset: int
    plus: bool
    pending: tuple[str, Node | None] | None = None


class LRU(OrderedDict[Any, Any]):
    """A bounded map, oldest first out; ``take`` removes what it returns."""

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


class DirectoryOperations:
    """The directory operations of ``HangarfsOperations`` (``mount.py``), which holds their state."""

    source: MountSource
    immutable: bool
    _ids: Iterator[int]
    _listings: dict[int, _Listing]
    _dir_paths: dict[int, str]
    _continuations: LRU

    if TYPE_CHECKING:

        def _lookup(self, path: str) -> Node: ...
        def _stat(self, node: Node) -> dict[str, int]: ...
        def _dir_mode(self) -> int: ...
        def _file_mode(self) -> int: ...

    def init_listings(self) -> None:
        self._listings = {}  # open directory handle -> its listing in progress
        self._dir_paths = {}
        self._continuations = LRU(64)  # (path, offset) -> _Listing, when there is no opendir handle

    @translated
    def opendir(self, path: str) -> int:
        # Not ENOSYS even when immutable: libfuse's high-level API keeps its own directory handle and
        # crashes on READDIR without one. HangarfsFUSE.opendir asks the kernel to cache listings instead.
        node = self._lookup(path)
        if not node.is_dir:
            raise mfusepy.FuseOSError(errno.ENOTDIR)
        fh = next(self._ids)
        self._dir_paths[fh] = path
        return fh

    @translated
    def releasedir(self, path: str | None, fh: int) -> int:
        self._listings.pop(fh, None)
        self._dir_paths.pop(fh, None)
        return 0

    def readdir(self, path: str, fh: int) -> list[str]:  # registered so libfuse calls fill_dir below
        raise mfusepy.FuseOSError(errno.ENOSYS)

    @translated
    def fill_dir(
        self, path: str | None, buf: Any, filler: Any, offset: int, fh: int, plus_wanted: bool
    ) -> int:
        """Stream entries into libfuse's buffer from ``offset``; resume where the buffer filled up."""
        path = self._dir_paths.get(fh, path) if fh else path
        if path is None:
            raise mfusepy.FuseOSError(errno.EBADF)
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
        # the hot loop of a listing of millions: locals only, one ctypes call an entry
        entries = (
            listing.entries
            if listing.pending is None
            else itertools.chain([listing.pending], listing.entries)
        )
        listing.pending = None
        next_offset = listing.next_offset
        mode = st.st_mode = file_mode
        for item in entries:
            name, node = item
            if node is not None:
                mode = st.st_mode = dir_mode if node.is_dir else file_mode
                if node.mode is not None:  # chmod through a writable view
                    mode = st.st_mode = stat.S_IFMT(mode) | node.mode
                st.st_size = node.size
                st.st_blocks = (node.size + 511) // 512
                st.st_nlink = 2 if node.is_dir else 1
            elif name in ('.', '..'):
                mode = st.st_mode = dir_mode
            elif mode != file_mode:
                mode = st.st_mode = file_mode
            if filler(buf, name.encode('utf-8', 'surrogateescape'), st, next_offset + 1, flags) != 0:
                listing.pending = item
                full = True
                break
            next_offset += 1
        listing.next_offset = next_offset
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
        entries: Iterator[tuple[str, Node | None]] | None
        if plus:
            entries = self.source.list_nodes(path)
        else:
            names = self.source.list_names(path)
            entries = None if names is None else ((n, DIR_HINT if d else None) for n, d in names)
        if entries is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        dots: Iterator[tuple[str, Node | None]] = iter([('.', node), ('..', None)])
        stream = itertools.chain(dots, entries)
        for _ in range(offset):  # a seek back (rare): start over and skip
            if next(stream, None) is None:
                break
        return _Listing(path, node, stream, offset, plus)


class HangarfsFUSE(mfusepy.FUSE):  # type: ignore[misc] # mfusepy is untyped
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
        decoded = path.decode(self.encoding, self.errors) if path is not None else None
        try:
            status: int = self.operations.fill_dir(
                decoded, buf, filler, offset, fip.contents.fh, bool(flags & FUSE_READDIR_PLUS)
            )
        except mfusepy.FuseOSError as err:
            return -(err.errno or errno.EIO)
        return status
