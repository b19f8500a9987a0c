"""The low-level FUSE adapter (the default): the kernel's requests translated into ``MountSource`` calls.

It speaks the kernel's protocol itself (``kernel.py``) and chooses the inode numbers (``inodes.py``),
which is what lets the kernel cache what a mount shows:

- **Commit and tag mounts** (immutable): names, attributes, listings and file pages are cached for
  ever. No OPEN or OPENDIR ever reaches the daemon (answered ENOSYS once, the kernel's no-open mode,
  which also caches listings), nor FLUSH, ACCESS or xattr requests; READDIRPLUS carries every entry's
  attributes (``listing.py``), so ``find``, ``du`` and ``ls -l`` need no LOOKUP per file, and a second
  listing is served by the kernel. The ``isatty()`` question Python asks on every open brings a small
  file into the page cache before its first READ; big files are decompressed ahead (``readahead.py``).
- **Branch and --all-refs mounts**: the same long timeouts and caches. File numbers stand for
  versions, so a file opened before the branch moved keeps reading its version, and when the daemon
  sees a head move (every 0.25 s, ``follow.py``) it switches the view between two requests and then
  invalidates exactly the names and directories the commit changed (``notify_inval_entry`` /
  ``notify_inval_inode``): between commits a branch mount is as fast as a commit mount, and it never
  answers from the old commit once the switch is made.
- **The staging mount** (``lowlevel_staging.py``): files change through the mount itself, so nothing
  is cached and every request reaches the view, as with the mfusepy adapter (``mount.py``).

One thread answers requests (they are GIL-bound; the thread that polls branch heads sends the
invalidations, which the kernel may make wait for requests in flight).
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hangarfs.errors import HangarfsError
from hangarfs.fs import kernel as k
from hangarfs.fs.errnos import errno_for
from hangarfs.fs.follow import WATCH_INTERVAL, poll_moves
from hangarfs.fs.inodes import InodeTable, join, split
from hangarfs.fs.listing import Listings, _Stream
from hangarfs.fs.readahead import ReadAhead
from hangarfs.fs.usage import statfs_of
from hangarfs.fs.view import MountSource, Node

log = logging.getLogger('hangarfs.mount')

FOREVER = 365 * 24 * 3600.0
MAX_IO = 1 << 20  # largest READ and WRITE request (max_pages = 256)
READAHEAD_KB = 1024
STORE_LIMIT = 64 << 10  # files up to this size go into the page cache on the first isatty question
OPNAMES: dict[int, str] = k.OPCODE_NAMES


class _Stop(Exception):
    """A signal asked the daemon to unmount."""


@dataclass(frozen=True)
class Policy:
    """How much the kernel may cache, by kind of mount."""

    entry: k.Timeout
    attr: k.Timeout
    negative: k.Timeout
    positional: bool  # listed files get positional numbers (immutable views)
    by_version: bool  # a file's number stands for a version (read-only views) or for a path (staging)
    writable: bool
    dir_mode: int = 0o555
    file_mode: int = 0o444


def read_only_policy(source: MountSource) -> Policy:
    forever = k.Timeout.of(FOREVER)
    return Policy(forever, forever, forever, source.is_immutable(), True, False)


class LowLevelFS(Listings):
    """Serves one mount of ``source`` over ``/dev/fuse``; see the module doc for the caching policy."""

    def __init__(
        self,
        source: MountSource,
        *,
        mountpoint: str,
        on_ready: Callable[[], None] | None = None,
        policy: Policy | None = None,
        debug: bool = False,
    ) -> None:
        self.source = source
        self.mountpoint = mountpoint.rstrip('/') or '/'
        self.on_ready = on_ready
        self.policy = policy or read_only_policy(source)
        self.debug = debug
        self.uid = os.getuid()
        self.gid = os.getgid()
        self.table = InodeTable()
        self.ch: k.Channel | None = None
        self._lock = threading.Lock()  # held while a request is answered and while the view switches
        self._generation = 0  # bumped at each switch of a moving view
        self._streams: OrderedDict[tuple[int, int, int], _Stream] = OrderedDict()
        self._stop = threading.Event()
        self._busy = False  # answering a request (a signal then stops the loop after it)
        self._signalled = 0
        self.counts: dict[int, int] = {}
        self.handlers: dict[int, Callable[[int, int, memoryview], None]] = {
            k.INIT: self.op_init,
            k.DESTROY: self.op_destroy,
            k.LOOKUP: self.op_lookup,
            k.FORGET: self.op_forget,
            k.BATCH_FORGET: self.op_batch_forget,
            k.GETATTR: self.op_getattr,
            k.READ: self.op_read,
            k.RELEASE: self.op_release,
            k.READDIR: self.op_readdir,
            k.READDIRPLUS: self.op_readdirplus,
            k.RELEASEDIR: self.op_releasedir,
            k.STATFS: self.op_statfs,
            k.INTERRUPT: self.op_ignore,
            k.IOCTL: self.op_ioctl,
        }
        self._stored: OrderedDict[int, None] = OrderedDict()  # small files pushed into the page cache
        # big sequential reads of immutable versions: the next pieces decompressed on a worker
        self.readahead = ReadAhead(self.source.read) if not self.policy.writable else None
        self._dir_attr_mode = stat.S_IFDIR | self.policy.dir_mode
        self._file_attr_mode = stat.S_IFREG | self.policy.file_mode

    # ------------------------------------------------------------------------------ serving

    def mount_options(self) -> list[str]:
        return [
            'ro' if not self.policy.writable else 'rw',
            'nosuid',
            'nodev',
            'fsname=hangarfs',
            'subtype=hangarfs',
        ]

    def serve(self) -> None:
        """Mount, answer requests until unmounted or signalled (SIGTERM/SIGINT/SIGHUP unmount cleanly)."""
        fd = k.mount(self.mountpoint, self.mount_options())
        self.ch = k.Channel(fd, MAX_IO + 8192)
        signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        in_main = threading.current_thread() is threading.main_thread()  # else: the embedder's signals
        old = {s: signal.signal(s, self._on_signal) for s in signals} if in_main else {}
        try:
            self._loop()
        except _Stop:
            log.info('%s: unmounting %s', signal.Signals(self._signalled).name, self.mountpoint)
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            self._stop.set()
            if self.readahead is not None:
                self.readahead.close()
            k.unmount(self.mountpoint)
            self.ch.close()
            self.ready_cleanup()
            log.info('unmounted')

    def ready_cleanup(self) -> None:
        """Called once the mount is gone (the staging adapter closes what it holds)."""

    def _on_signal(self, signum: int, frame: Any) -> None:
        """Stop now while waiting for a request; while answering one, once it is answered (a staging
        view is never left half way through a change)."""
        self._signalled = signum
        if not self._busy:
            raise _Stop

    def _loop(self) -> None:
        ch = self.ch
        assert ch is not None
        header = k.IN_HEADER.unpack_from
        handlers = self.handlers
        counts = self.counts
        lock = self._lock
        debug = self.debug
        answers = self.answers()
        stored = self._stored
        ioctl = k.IOCTL
        while True:
            req = ch.receive()
            if req is None:
                return
            length, opcode, unique, nodeid = header(req)[:4]
            counts[opcode] = counts.get(opcode, 0) + 1
            if debug:
                log.info('request %s nodeid=%d', OPNAMES.get(opcode, opcode), nodeid)
            code = answers.get(opcode)
            if code is not None:  # the same errno every time: answered before anything else
                ch.error(unique, code)
                continue
            if opcode == ioctl and nodeid in stored:  # a warm open's isatty(): nothing to push
                ch.error(unique, errno.ENOTTY)
                continue
            handler = handlers.get(opcode)
            if handler is None:
                if opcode not in k.NO_REPLY:
                    ch.error(unique, errno.ENOSYS)
                continue
            self._busy = True
            try:
                with lock:
                    handler(unique, nodeid, req[k.IN_HEADER.size : length])
            except _Stop:
                raise
            except Exception as err:  # every error becomes an errno, never a crash
                if opcode in k.NO_REPLY:
                    log.exception('%s failed', OPNAMES.get(opcode, opcode))
                else:
                    ch.error(unique, self._errno(opcode, nodeid, err))
            finally:
                self._busy = False
            if self._signalled:
                raise _Stop
            if opcode == k.DESTROY:
                return

    def answers(self) -> dict[int, int]:
        """Requests whose answer is always the same errno. ENOSYS makes the kernel stop sending
        OPEN, OPENDIR (no-open modes: it caches pages and listings), FLUSH, ACCESS and xattr reads.
        IOCTL it sends on every ``open()`` from Python (``isatty``) whatever the answer, so the
        cheapest answer is the earliest."""
        return {
            k.OPEN: errno.ENOSYS,
            k.OPENDIR: errno.ENOSYS,
            k.FLUSH: errno.ENOSYS,
            k.ACCESS: errno.ENOSYS,
            k.GETXATTR: errno.ENOSYS,
            k.LISTXATTR: errno.ENOSYS,
        }

    def _errno(self, opcode: int, nodeid: int, err: BaseException) -> int:
        if isinstance(err, k.FuseError):
            return err.errno
        code = errno_for(err)
        what = f'{OPNAMES.get(opcode, str(opcode)).lower()} {self.table.path_of(nodeid) or nodeid}'
        if isinstance(err, HangarfsError | OSError):
            if code == errno.EIO or not isinstance(err, HangarfsError):
                log.error('%s: %s', what, err)
        else:
            log.exception('%s failed', what)
        return code

    # ------------------------------------------------------------------------------ init

    def wanted_flags(self) -> int:
        flags = k.ASYNC_READ | k.BIG_WRITES | k.DO_READDIRPLUS | k.PARALLEL_DIROPS | k.MAX_PAGES
        if self.policy.writable:
            flags |= k.ATOMIC_O_TRUNC | k.AUTO_INVAL_DATA
        return flags

    def op_init(self, unique: int, nodeid: int, body: memoryview) -> None:
        major, minor, max_readahead, flags = k.INIT_IN.unpack_from(body)
        if major != k.PROTOCOL_MAJOR:
            raise k.FuseError(errno.EPROTO)
        out = k.INIT_OUT.pack(
            k.PROTOCOL_MAJOR,
            k.PROTOCOL_MINOR,
            min(max_readahead, MAX_IO),
            flags & self.wanted_flags(),
            16,  # max_background
            12,  # congestion_threshold
            MAX_IO,  # max_write
            1,  # time_gran (ns)
            MAX_IO // 4096,  # max_pages
            0,
            0,
            *([0] * 7),
        )
        assert self.ch is not None
        self.ch.reply(unique, out)
        log.info('mounted: %s (low-level adapter, FUSE %d.%d)', self.source.describe(), major, minor)
        threading.Thread(target=self._after_init, name='hangarfs-init', daemon=True).start()

    def _after_init(self) -> None:
        if not self.source.is_immutable() and not self.policy.writable:
            threading.Thread(target=self._watch, name='hangarfs-watch', daemon=True).start()
        if self.on_ready is not None:
            self.on_ready()
        raise_readahead(self.mountpoint)

    def op_destroy(self, unique: int, nodeid: int, body: memoryview) -> None:
        assert self.ch is not None
        self.ch.reply(unique)

    def op_ignore(self, unique: int, nodeid: int, body: memoryview) -> None:
        pass

    # ------------------------------------------------------------------------------ attributes

    def attr_of(self, ino: int, node: Node) -> tuple[int, ...]:
        """A node's attributes; its own permission bits if it has some (chmod in the staging mount)."""
        if node.is_dir:
            mode = self._dir_attr_mode if node.mode is None else stat.S_IFDIR | node.mode
            return k.attr_fields(ino, 0, mode, 2, node.mtime_ns, self.uid, self.gid)
        mode = self._file_attr_mode if node.mode is None else stat.S_IFREG | node.mode
        return k.attr_fields(ino, node.size, mode, 1, node.mtime_ns, self.uid, self.gid)

    def entry_out(self, ino: int, node: Node) -> bytes:
        p = self.policy
        return k.ENTRY_OUT.pack(
            ino, 0, p.entry.sec, p.attr.sec, p.entry.nsec, p.attr.nsec, *self.attr_of(ino, node)
        )

    def negative_entry(self) -> bytes:
        p = self.policy
        return k.ENTRY_OUT.pack(0, 0, p.negative.sec, 0, p.negative.nsec, 0, *([0] * 16))

    def node_of(self, ino: int) -> tuple[str, Node]:
        """The path and node a number stands for: a file's pinned version, a directory's current state."""
        node = self.table.file_node(ino)
        path = self.table.path_of(ino) or ''
        if node is not None:
            return path, node
        if not path:
            raise k.FuseError(errno.ENOENT)
        node = self.source.lookup(path)
        if node is None:
            raise k.FuseError(errno.ENOENT)
        return path, node

    def dir_path(self, ino: int) -> str:
        rec = self.table.record(ino)
        if rec is None or not rec.path:
            raise k.FuseError(errno.ENOENT)
        if not rec.is_dir:
            raise k.FuseError(errno.ENOTDIR)
        return rec.path

    def new_entry(self, path: str, node: Node) -> int:
        """A number for a node handed to the kernel (counted as one lookup)."""
        return self.table.entry(path, node, by_version=self.policy.by_version)

    # ------------------------------------------------------------------------------ requests

    def op_lookup(self, unique: int, nodeid: int, body: memoryview) -> None:
        name = bytes(body[: len(body) - 1]).decode('utf-8', 'surrogateescape')
        path = join(self.dir_path(nodeid), name)
        node = self.source.lookup(path)
        assert self.ch is not None
        if node is None:
            if self.policy.negative.sec or self.policy.negative.nsec:
                self.ch.reply(unique, self.negative_entry())
                return
            raise k.FuseError(errno.ENOENT)
        self.ch.reply(unique, self.entry_out(self.new_entry(path, node), node))

    def op_forget(self, unique: int, nodeid: int, body: memoryview) -> None:
        self.table.forget(nodeid, k.FORGET_IN.unpack_from(body)[0])

    def op_batch_forget(self, unique: int, nodeid: int, body: memoryview) -> None:
        count = k.BATCH_FORGET_IN.unpack_from(body)[0]
        for i in range(count):
            ino, n = k.FORGET_ONE.unpack_from(body, 8 + 16 * i)
            self.table.forget(ino, n)

    def op_getattr(self, unique: int, nodeid: int, body: memoryview) -> None:
        node = self.getattr_node(nodeid, body)
        p = self.policy
        assert self.ch is not None
        self.ch.reply(unique, k.ATTR_OUT.pack(p.attr.sec, p.attr.nsec, 0, *self.attr_of(nodeid, node)))

    def getattr_node(self, nodeid: int, body: memoryview) -> Node:
        return self.node_of(nodeid)[1]

    def op_release(self, unique: int, nodeid: int, body: memoryview) -> None:
        assert self.ch is not None
        self.ch.reply(unique)

    def op_read(self, unique: int, nodeid: int, body: memoryview) -> None:
        fh, offset, size = k.READ_IN.unpack_from(body)[:3]
        node = self.read_node(nodeid, fh)
        data = (
            self.readahead.read(node, size, offset)
            if self.readahead
            else self.source.read(node, size, offset)
        )
        if offset == 0 and len(data) == node.size <= STORE_LIMIT and not fh:
            self._mark_stored(nodeid)  # the kernel has its pages now: the next isatty() pushes nothing
        assert self.ch is not None
        self.ch.reply(unique, data)

    def read_node(self, nodeid: int, fh: int) -> Node:
        node = self.table.file_node(nodeid)
        if node is None:
            raise k.FuseError(errno.ENOENT)
        return node

    def op_ioctl(self, unique: int, nodeid: int, body: memoryview) -> None:
        """ENOTTY; but first, a small file's bytes into the page cache, so that no READ follows.

        Python's ``open()`` asks ``isatty`` (TCGETS) of every file it opens, and the kernel forwards
        every ioctl on a FUSE file whatever it was answered before: the one round trip a warm
        ``numpy.load`` costs. Cold, the same question comes between the open and the first read, so
        the answer carries the file (``NOTIFY_STORE``): a cold load is a LOOKUP and this, not three."""
        assert self.ch is not None
        if nodeid not in self._stored:
            node = self.table.file_node(nodeid)
            if node is not None and node.version and 0 < node.size <= STORE_LIMIT:
                self.ch.notify_store(nodeid, 0, self.source.read(node, node.size, 0))
                self._mark_stored(nodeid)
        self.ch.error(unique, errno.ENOTTY)

    def _mark_stored(self, nodeid: int) -> None:
        self._stored[nodeid] = None
        if len(self._stored) > 65536:  # forgetting one costs a redundant push at most
            self._stored.popitem(last=False)

    def op_statfs(self, unique: int, nodeid: int, body: memoryview) -> None:
        """What ``df`` shows: the repository's bytes as used, its filesystem's free space as free."""
        st = statfs_of(*(self.source.usage() or (0, 0)))
        out = k.STATFS_OUT.pack(
            st['f_blocks'],
            st['f_bfree'],
            st['f_bavail'],
            0,  # files
            0,  # free files
            st['f_bsize'],
            st['f_namemax'],
            st['f_frsize'],
            0,
            *([0] * 6),
        )
        assert self.ch is not None
        self.ch.reply(unique, out)

    # ------------------------------------------------------------------------------ following a branch

    def _watch(self) -> None:
        """Switch moving views to new heads between requests, then invalidate what changed."""
        while not self._stop.wait(WATCH_INTERVAL):
            try:
                moves = poll_moves(self.source)
            except Exception:
                log.exception('reading branch heads failed')
                continue
            for move in moves:
                with self._lock:
                    move.apply()
                    self._generation += 1
                self.invalidate(move.entries, move.dirs)
                log.info(
                    '%s: %d names and %d directories invalidated',
                    move.description,
                    len(move.entries),
                    len(move.dirs),
                )

    def invalidate(self, entries: list[str], dirs: list[str]) -> None:
        """Tell the kernel that these names and directories changed (from any thread but the loop's)."""
        ch = self.ch
        if ch is None:
            return
        for path in entries:
            parent, name = split(path)
            pino = self.table.known_dir(parent)
            if pino is not None:
                ch.notify_inval_entry(pino, name.encode('utf-8', 'surrogateescape'))
        for path in dirs:
            ino = self.table.known_dir(path)
            if ino is not None:
                ch.notify_inval_inode(ino)


def raise_readahead(mountpoint: str) -> None:
    """FUSE caps readahead at the mount's backing-device setting (128 KiB); raise it where allowed."""
    try:
        dev = os.stat(mountpoint).st_dev  # served by the request loop once INIT is answered
        path = f'/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb'
        with open(path, 'w') as fh:
            fh.write(str(READAHEAD_KB))
        log.info('readahead of %s set to %d KiB', mountpoint, READAHEAD_KB)
    except OSError as err:  # not root, or no such setting: 128 KiB requests, still correct
        log.info('readahead left at the default (%s)', err)
