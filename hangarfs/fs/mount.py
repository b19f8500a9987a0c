"""The FUSE adapter: translates FUSE operations into ``MountSource`` calls, nothing more.

On an immutable view (a commit or tag) it tells the kernel to cache everything: long entry and
attribute timeouts, ENOSYS from ``open`` so that the kernel stops sending opens and releases and keeps
pages cached (FUSE's no-open mode), and cached listings.

On a moving view (a branch) each open pins the node it opened. The kernel has one inode (one page
cache, one size) per path under libfuse's high-level API, so when a path changes while handles of its
old version are open, path lookups keep answering the old version and a background thread unlinks the
path *through the mount* as the daemon itself. libfuse renames an open file it is asked to unlink to
a hidden name (``.fuse_hidden...``) that we answer with the old node, so the old inode keeps its
pages, its size and a name ``fstat`` can reach, and the next lookup makes a new inode for the new
version.
So a handle opened before the branch moved keeps reading exactly the version it opened. Everything else
a user tries to change fails with EROFS.

Listings stream with offsets, so a directory of millions of samples needs bounded memory; directories
up to ``READDIRPLUS_LIMIT`` entries answer READDIRPLUS with their attributes, so ``find``/``ls -l``
need no lookup per file.
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import os
import queue
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
from hangarfs.fs.view import MountSource, Node, StagingView, WriteHandle

log = logging.getLogger('hangarfs.mount')

FOREVER = 365 * 24 * 3600.0
BRANCH_TIMEOUT = 0.5  # with BranchView.refresh = 0.25 s, a new commit shows within 0.75 s
WATCH_INTERVAL = 0.25  # how often a moving view's watcher looks for changed paths with open handles
READDIRPLUS_LIMIT = 300_000  # above this, listings carry no attributes (libfuse keeps a node per entry)
MAX_IO = 1 << 20
FUSE_READDIR_PLUS = 1
FUSE_FILL_DIR_PLUS = 2
FUSE_CAP_ATOMIC_O_TRUNC = 1 << 3
FUSE_CAP_READDIRPLUS_AUTO = 1 << 14
READAHEAD_KB = 1024  # the mount's backing-device readahead: 1 MiB READ requests instead of 128 KiB

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

    def __init__(
        self, source: MountSource, *, mountpoint: str, on_ready: Callable[[], None] | None = None
    ) -> None:
        self.source = source
        self.mountpoint = mountpoint.rstrip('/')
        self.immutable = source.is_immutable()
        self.tracks_open = source.tracks_open_files()  # a lazy view: opens and releases pin its cache
        self._tokens: dict[int, Any] = {}
        self.on_ready = on_ready
        self.uid = os.getuid()
        self.gid = os.getgid()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._handles: dict[int, Node] = {}  # open file handle -> the node it reads
        self._handle_paths: dict[int, str] = {}
        self._attached: dict[str, set[int]] = {}  # path -> handles open on the inode the path names now
        self._pending: set[str] = set()  # paths whose old inode is being detached
        self._hidden: dict[str, Node] = {}  # libfuse's hidden name of a detached inode -> its node
        self._rotations: queue.Queue[str | None] = queue.Queue()
        self._rotator: threading.Thread | None = None
        self._rotator_tid = -1
        self._listings: dict[int, _Listing] = {}
        self._dir_paths: dict[int, str] = {}
        self._continuations = _LRU(64)  # (path, offset) -> _Listing, when there is no opendir handle
        self._cached_versions = _LRU(200_000)  # path -> version the kernel last cached (moving views)

    # ---------------------------------------------------------------------------- setup

    # how long the kernel may trust what it was told; a moving view detaches old versions (see above)
    detach_old_versions = True

    def _timeout(self) -> float:
        return FOREVER if self.immutable else BRANCH_TIMEOUT

    def init_with_config(self, conn: Any, config: Any) -> None:
        if config is not None:
            timeout = self._timeout()
            config.entry_timeout = timeout
            config.attr_timeout = timeout
            config.negative_timeout = timeout
            config.kernel_cache = 1 if self.immutable else 0
            config.use_ino = 0
            config.hard_remove = 0  # an unlinked open file is renamed aside and kept (see _rotate_loop)
            config.nullpath_ok = 1 if self.detach_old_versions and not self.immutable else 0
        if conn is not None:
            conn.max_readahead = MAX_IO
            conn.want |= FUSE_CAP_ATOMIC_O_TRUNC  # O_TRUNC comes with open, not as a separate truncate
            # Always READDIRPLUS: in its adaptive mode the kernel asks for attributes with the first
            # batch only, so `find` then sends one LOOKUP per file. fill_dir bounds what plus costs.
            conn.want &= ~FUSE_CAP_READDIRPLUS_AUTO
            if hasattr(conn, 'max_read'):
                conn.max_read = MAX_IO
        threading.Thread(target=self._raise_readahead, name='hangarfs-readahead', daemon=True).start()
        if self.detach_old_versions and not self.immutable:
            self._rotator = threading.Thread(target=self._rotate_loop, name='hangarfs-rotate', daemon=True)
            self._rotator.start()
        log.info('mounted: %s', self.source.describe())
        if self.on_ready is not None:
            self.on_ready()

    def _raise_readahead(self) -> None:
        """FUSE caps readahead at the mount's backing-device setting (128 KiB); raise it where allowed."""
        try:
            dev = os.stat(self.mountpoint).st_dev  # served by the loop once init has returned
            path = f'/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb'
            with open(path, 'w') as fh:
                fh.write(str(READAHEAD_KB))
            log.info('readahead of %s set to %d KiB', self.mountpoint, READAHEAD_KB)
        except OSError as err:  # not root, or no such setting: 128 KiB requests, still correct
            log.info('readahead left at the default (%s)', err)

    def destroy(self, path: str) -> None:
        self._rotations.put(None)
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
        node = self._resolve(path)
        if node is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        return node

    def _resolve(self, path: str) -> Node | None:
        """The node a path names now: the view's, unless handles of an older version hold its inode."""
        if self.immutable or not self.detach_old_versions:
            return self.source.lookup(path)
        hidden = self._hidden.get(path)
        if hidden is not None:
            return hidden
        node = self.source.lookup(path)
        with self._lock:
            fhs = self._attached.get(path)
            if not fhs:
                return node
            pinned = self._handles[next(iter(fhs))]
            if node is not None and node.version == pinned.version:
                return node
            if path not in self._pending:
                self._pending.add(path)
                self._rotations.put(path)
            return pinned

    # ---------------------------------------------------------------------------- moving views

    def _rotate_loop(self) -> None:
        """Detach the inodes of changed paths from their names, so new opens get new inodes.

        Also watches: every WATCH_INTERVAL it refreshes the view and queues every path whose open
        handles hold another version than the view's, so the detaching is done before anyone looks.
        """
        self._rotator_tid = threading.get_native_id()
        while True:
            try:
                path = self._rotations.get(timeout=WATCH_INTERVAL)
            except queue.Empty:
                self._watch()
                continue
            if path is None:
                return
            with self._lock:
                if path not in self._pending:
                    continue
            try:
                os.unlink(self.mountpoint + path)  # reaches self.unlink, below, as our own pid
            except OSError as err:
                log.warning('could not detach the old version of %s: %s', path, err)
                with self._lock:
                    self._pending.discard(path)

    def _watch(self) -> None:
        try:
            self.source.refresh()
            with self._lock:
                held = {p: self._handles[next(iter(fhs))].version for p, fhs in self._attached.items() if fhs}
            for path, version in held.items():
                node = self.source.lookup(path)
                if node is None or node.version != version:
                    with self._lock:
                        if path in self._attached and path not in self._pending:
                            self._pending.add(path)
                            self._rotations.put(path)
        except Exception:
            log.exception('watching for branch moves failed')

    def _ours(self) -> bool:
        """True inside a request made by our rotator thread (FUSE requests carry the caller's thread id)."""
        return not self.immutable and mfusepy.fuse_get_context()[2] == self._rotator_tid

    @translated
    def unlink(self, path: str) -> int:
        with self._lock:
            if self._hidden.pop(path, None) is not None:  # libfuse drops a hidden name at last release
                return 0
            if path in self._pending and self._ours():  # an old inode nobody has open in libfuse's view
                self._pending.discard(path)
                self._attached.pop(path, None)
                return 0
        raise mfusepy.FuseOSError(errno.EROFS)

    @translated
    def rename(self, old: str, new: str, *flags: Any) -> int:
        # Unlinking a path that has open handles, libfuse renames it to a hidden name instead
        with self._lock:
            fhs = self._attached.get(old)
            if (
                old in self._pending
                and fhs
                and self._ours()
                and os.path.basename(new).startswith('.fuse_hidden')
            ):
                self._hidden[new] = self._handles[next(iter(fhs))]
                self._pending.discard(old)
                del self._attached[old]  # those handles now hold the hidden inode
                return 0
        raise mfusepy.FuseOSError(errno.EROFS)

    def _refuse(self, *args: Any) -> int:
        raise mfusepy.FuseOSError(errno.EROFS)

    # A moving view is mounted read-write (its daemon must unlink), so every change a user tries is
    # refused here; an immutable view is mounted ``ro`` and the kernel refuses before asking.
    create = mkdir = rmdir = chmod = chown = truncate = utimens = _refuse
    symlink = link = mknod = write = setxattr = removexattr = _refuse

    @translated
    def getattr(self, path: str | None, fh: Any = None) -> dict[str, int]:
        if fh is not None:
            node = self._handles.get(getattr(fh, 'fh', 0))
            if node is not None:
                return self._stat(node)
        if path is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
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
        if self.immutable and not self.tracks_open:
            raise mfusepy.FuseOSError(errno.ENOSYS)  # no-open mode: the kernel stops asking
        node = self._lookup(path)
        if node.is_dir:
            raise mfusepy.FuseOSError(errno.EISDIR)
        fh = next(self._ids)
        token = self.source.open_file(node) if self.tracks_open else None
        with self._lock:
            self._handles[fh] = node
            self._handle_paths[fh] = path
            self._attached.setdefault(path, set()).add(fh)
            if token is not None:
                self._tokens[fh] = token
        fi.fh = fh
        fi.keep_cache = 1 if self.immutable or self._cached_versions.get(path) == node.version else 0
        self._cached_versions.put(path, node.version)
        return 0

    @translated
    def read(self, path: str | None, size: int, offset: int, fh: Any) -> bytes:
        node = self._handles.get(getattr(fh, 'fh', 0)) if fh is not None else None
        if node is None:
            if path is None:
                raise mfusepy.FuseOSError(errno.EBADF)
            node = self._lookup(path)
        return self.source.read(node, size, offset)

    @translated
    def release(self, path: str | None, fh: Any) -> int:
        key = getattr(fh, 'fh', 0)
        token = self._tokens.pop(key, None)
        if token is not None:
            self.source.release_file(token)
        with self._lock:
            self._handles.pop(key, None)
            opened_as = self._handle_paths.pop(key, None)
            fhs = self._attached.get(opened_as) if opened_as is not None else None
            if fhs is not None and key in fhs:
                fhs.discard(key)
                if not fhs:  # nobody holds the old version any more: no need to detach it
                    del self._attached[opened_as]  # type: ignore[arg-type]
                    self._pending.discard(opened_as)
        return 0

    # ---------------------------------------------------------------------------- directories

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
        decoded = path.decode(self.encoding, self.errors) if path is not None else None
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
    }
    if read_only and operations.immutable:
        options['ro'] = True  # a moving view refuses changes itself (its daemon must unlink)
    # One thread: requests are bound by the GIL anyway, and several libfuse threads handing it around
    # were measured slower (the daemon spent seconds of system time per GiB read).
    HangarfsFUSE(
        operations,
        mountpoint,
        foreground=True,
        nothreads=True,
        raw_fi=True,
        debug=foreground_debug,
        **options,
    )


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

    def _stat(self, node: Node) -> dict[str, int]:
        st = super()._stat(node)
        if node.mode is not None:
            st['st_mode'] = stat.S_IFMT(st['st_mode']) | node.mode
        return st

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
            result = super().open(path, fi)
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
        return super().getattr(path, fh)

    @translated
    def statfs(self, path: str) -> dict[str, int]:
        from hangarfs.fs.usage import statfs_of

        return statfs_of(*self.staging.usage())

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
        return super().release(path, fh)

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
