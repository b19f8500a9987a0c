"""The mfusepy FUSE adapter: translates libfuse high-level operations into ``MountSource`` calls.

The low-level adapter (``lowlevel.py``) replaced it as the default; this one is kept selectable
(``hangarfs mount --adapter mfusepy``, $HANGARFS_FUSE_ADAPTER) for side-by-side benchmarks.

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

Listings stream with offsets and carry attributes (``mount_listing.py``).
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import queue
import stat
import threading
from collections.abc import Callable
from typing import Any

from hangarfs.fs.fuselib import mfusepy, translated
from hangarfs.fs.mount_listing import LRU, DirectoryOperations, HangarfsFUSE
from hangarfs.fs.usage import statfs_of
from hangarfs.fs.view import MountSource, Node

log = logging.getLogger('hangarfs.mount')

FOREVER = 365 * 24 * 3600.0
BRANCH_TIMEOUT = 0.5  # with BranchView.refresh = 0.25 s, a new commit shows within 0.75 s
WATCH_INTERVAL = 0.25  # how often a moving view's watcher looks for changed paths with open handles
MAX_IO = 1 << 20
FUSE_CAP_ATOMIC_O_TRUNC = 1 << 3
FUSE_CAP_READDIRPLUS_AUTO = 1 << 14
READAHEAD_KB = 1024  # the mount's backing-device readahead: 1 MiB READ requests instead of 128 KiB


class HangarfsOperations(DirectoryOperations, mfusepy.Operations):  # type: ignore[misc] # mfusepy is untyped
    """FUSE operations over a MountSource (read-only; ``mount_staging.py`` adds the staging mount)."""

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
        self.init_listings()
        self._cached_versions = LRU(200_000)  # path -> version the kernel last cached (moving views)

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

    def path_of_call(self, args: tuple[Any, ...]) -> str:
        """The path an operation was about, for a log line: libfuse passes None with a file handle
        (``nullpath_ok``), so then the path the handle was opened as."""
        path = args[0] if args else None
        if path is None and args:
            fh = getattr(args[-1], 'fh', args[-1])
            path = self.handle_path(fh) if isinstance(fh, int) else None
        return str(path) if path is not None else '?'

    def handle_path(self, fh: int) -> str | None:
        return self._handle_paths.get(fh) or self._dir_paths.get(fh)

    def _stat(self, node: Node) -> dict[str, int]:
        if node.is_dir:
            mode = stat.S_IFDIR | (node.mode if node.mode is not None else self._dir_mode())
            nlink = 2
        else:
            mode = stat.S_IFREG | (node.mode if node.mode is not None else self._file_mode())
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
        return statfs_of(*(self.source.usage() or (0, 0)))

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
