"""The low-level FUSE adapter (the default): the kernel's requests translated into ``MountSource`` calls.

It speaks the kernel's protocol itself (``kernel.py``) and chooses the inode numbers (``inodes.py``),
which is what lets the kernel cache what a mount shows:

- **Commit and tag mounts** (immutable): names, attributes, listings and file pages are cached for
  ever. No OPEN or OPENDIR ever reaches the daemon (answered ENOSYS once, the kernel's no-open mode,
  which also caches listings), nor FLUSH, ACCESS or xattr requests; READDIRPLUS carries every entry's
  attributes (positional numbers: a list of names per directory), so ``find``, ``du`` and ``ls -l``
  need no LOOKUP per file, and a second listing is served by the kernel.
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
import itertools
import logging
import os
import signal
import stat
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hangarfs.errors import HangarfsError
from hangarfs.fs import kernel as k
from hangarfs.fs.errnos import errno_for
from hangarfs.fs.follow import WATCH_INTERVAL, pinned, poll_moves
from hangarfs.fs.inodes import InodeTable, Listing, join, split
from hangarfs.fs.readahead import ReadAhead
from hangarfs.fs.view import MountSource, Node

log = logging.getLogger('hangarfs.mount')

FOREVER = 365 * 24 * 3600.0
MAX_IO = 1 << 20  # largest READ and WRITE request (max_pages = 256)
READAHEAD_KB = 1024
READDIRPLUS_NAMED_LIMIT = 300_000  # a moving view's listing above this carries no attributes
PLUS_FIXED = k.ENTRY_OUT.size + k.DIRENT.size  # 152 bytes before a READDIRPLUS entry's name
UNIFORM_ENTRY = struct.Struct('<Q32sQ80sQQII')  # number, entry head, ino, attributes, dirent
NO_ENTRY = bytes(k.ENTRY_OUT.size)  # a READDIRPLUS entry without attributes (nodeid 0)
UNKNOWN_INO = 0xFFFFFFFF  # the d_ino of an entry listed without its number
ZEROS = bytes(8)
OPNAMES: dict[int, str] = k.OPCODE_NAMES


class _Stop(Exception):
    """A signal asked the daemon to unmount."""


@dataclass(frozen=True)
class Policy:
    """How much the kernel may cache, by kind of mount."""

    entry: k.Timeout
    attr: k.Timeout
    negative: k.Timeout
    no_open: bool  # answer OPEN/OPENDIR with ENOSYS: the kernel stops asking and caches pages and listings
    positional: bool  # listed files get positional numbers (immutable views)
    by_version: bool  # a file's number stands for a version (read-only views) or for a path (staging)
    writable: bool
    dir_mode: int = 0o555
    file_mode: int = 0o444


def read_only_policy(source: MountSource) -> Policy:
    forever = k.Timeout.of(FOREVER)
    return Policy(forever, forever, forever, True, source.is_immutable(), True, False)


class _Stream:
    """A directory listing in progress: entries from one state of the view, and the next offset."""

    __slots__ = (
        'dirpath',
        'done',
        'entries',
        'generation',
        'next_offset',
        'pending',
        'plus',
        'prepared',
        'requested_plus',
        'slot',
        'template',
    )

    def __init__(self, dirpath: str, entries: Iterator[tuple[str, Node | None]], plus: bool, generation: int):
        self.dirpath = dirpath
        self.entries = entries
        self.next_offset = 0
        self.pending: list[tuple[str, Node | None]] = []  # taken from entries, not yet sent
        self.plus = plus  # entries carry attributes (nodes, or the uniform file size in ``template``)
        self.generation = generation
        self.slot: tuple[int, Listing] | None = None
        self.template: tuple[bytes, bytes] | None = None  # READDIRPLUS bytes shared by every sample file
        self.prepared: tuple[int, int, bytes, list[tuple[str, Node | None]]] | None = None
        self.done = False
        self.requested_plus = plus


def list_entries(
    source: MountSource, path: str, with_nodes: bool
) -> Iterator[tuple[str, Node | None]] | None:
    """The one call that lists a directory of the view (the seam for the view's listing API)."""
    return source.list(path, with_nodes)


class LowLevelFS:
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
        }
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
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            self._loop()
        except _Stop:
            log.info('signalled: unmounting')
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
            handler = handlers.get(opcode)
            if handler is None:
                if opcode not in k.NO_REPLY:
                    ch.error(unique, errno.ENOSYS)
                continue
            try:
                with lock:
                    handler(unique, nodeid, req[k.IN_HEADER.size : length])
            except _Stop:
                raise
            except Exception as err:  # every error becomes an errno, never a crash
                if opcode in k.NO_REPLY:
                    log.exception('%s failed', OPNAMES.get(opcode, opcode))
                    continue
                ch.error(unique, self._errno(opcode, nodeid, err))
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
            k.IOCTL: errno.ENOTTY,
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
        raise_readahead(self.mountpoint)
        if not self.source.is_immutable() and not self.policy.writable:
            threading.Thread(target=self._watch, name='hangarfs-watch', daemon=True).start()
        if self.on_ready is not None:
            self.on_ready()

    def op_destroy(self, unique: int, nodeid: int, body: memoryview) -> None:
        assert self.ch is not None
        self.ch.reply(unique)

    def op_ignore(self, unique: int, nodeid: int, body: memoryview) -> None:
        pass

    # ------------------------------------------------------------------------------ attributes

    def attr_of(self, ino: int, node: Node) -> tuple[int, ...]:
        if node.is_dir:
            return k.attr_fields(ino, 0, self._dir_attr_mode, 2, node.mtime_ns, self.uid, self.gid)
        return k.attr_fields(ino, node.size, self._file_attr_mode, 1, node.mtime_ns, self.uid, self.gid)

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
        assert self.ch is not None
        self.ch.reply(unique, data)

    def read_node(self, nodeid: int, fh: int) -> Node:
        node = self.table.file_node(nodeid)
        if node is None:
            raise k.FuseError(errno.ENOENT)
        return node

    def op_statfs(self, unique: int, nodeid: int, body: memoryview) -> None:
        assert self.ch is not None
        self.ch.reply(unique, k.STATFS_OUT.pack(0, 0, 0, 0, 0, 4096, 255, 4096, 0, *([0] * 6)))

    # ------------------------------------------------------------------------------ directories

    def op_releasedir(self, unique: int, nodeid: int, body: memoryview) -> None:
        self._streams.pop((nodeid, k.RELEASE_IN.unpack_from(body)[0], -1), None)
        assert self.ch is not None
        self.ch.reply(unique)

    def op_readdir(self, unique: int, nodeid: int, body: memoryview) -> None:
        self._readdir(unique, nodeid, body, plus=False)

    def op_readdirplus(self, unique: int, nodeid: int, body: memoryview) -> None:
        self._readdir(unique, nodeid, body, plus=True)

    def _stream(self, nodeid: int, fh: int, offset: int, plus: bool) -> _Stream:
        stream = self._streams.pop((nodeid, fh, offset), None)
        if stream is not None and (stream.requested_plus or not plus):
            return stream
        path = self.dir_path(nodeid)
        node = self.source.lookup(path)
        if node is None:
            raise k.FuseError(errno.ENOENT)
        if not node.is_dir:
            raise k.FuseError(errno.ENOTDIR)
        state, subdir = pinned(self.source, path) if not self.policy.writable else (self.source, path)
        uniform = state.uniform_file_size(subdir) if plus else None
        names_only = False
        if uniform is not None and state is not self.source and self.table.listed_before(path, state):
            # Listed before the branch moved: the kernel holds numbers for these names, and those the
            # commit changed were invalidated. New numbers would take the pages of unchanged files,
            # so this listing gives names alone (a name the kernel does not know is looked up).
            uniform = None
            names_only = True
        with_nodes = (
            plus
            and not names_only
            and uniform is None
            and (self.policy.positional or node.entries is None or node.entries <= READDIRPLUS_NAMED_LIMIT)
        )
        if uniform is None:  # anything but the samples of a column: what the mount shows (InfoView too)
            state, subdir = self.source, path
        entries = list_entries(state, subdir, with_nodes)
        if entries is None:
            raise k.FuseError(errno.ENOENT)
        dots: list[tuple[str, Node | None]] = [('.', node), ('..', None)]
        stream = _Stream(
            path, itertools.chain(dots, entries), with_nodes or uniform is not None, self._generation
        )
        stream.requested_plus = plus  # kept for the requests that follow (READDIRPLUS with or without)
        if uniform is not None:  # positional numbers: every sample file of this state has this size
            stream.slot = self.table.listing(path, state, subdir)
            stream.template = self._uniform_template(uniform, node.mtime_ns)
        elif self.policy.positional and with_nodes:
            stream.slot = self.table.listing(path, state, subdir)
        for _ in range(offset):  # a seek back (rare): start over and skip
            if next(stream.entries, None) is None:
                break
        stream.next_offset = offset
        return stream

    def _uniform_template(self, size: int, mtime_ns: int) -> tuple[bytes, bytes]:
        """The constant parts of a sample file's READDIRPLUS entry: after the number, after its ino."""
        p = self.policy
        attr = k.attr_fields(0, size, self._file_attr_mode, 1, mtime_ns, self.uid, self.gid)
        return (
            struct.pack('<QQQII', 0, p.entry.sec, p.attr.sec, p.entry.nsec, p.attr.nsec),
            k.ATTR.pack(*attr)[8:],
        )

    def _readdir(self, unique: int, nodeid: int, body: memoryview, plus: bool) -> None:
        fh, offset, size = k.READ_IN.unpack_from(body)[:3]
        stream = self._stream(nodeid, fh, offset, plus)
        prepared = stream.prepared
        stream.prepared = None
        if prepared is not None and prepared[0] == offset and prepared[1] == size:
            out = prepared[2]
        else:
            if prepared is not None:  # asked for another size: send those entries again
                stream.pending = prepared[3] + stream.pending
                stream.next_offset = prepared[0]
            out = self._fill(stream, nodeid, size, plus)[0]
        assert self.ch is not None
        self.ch.reply(unique, out)
        if not out:
            return  # the end: the kernel asks no more
        self._streams[(nodeid, fh, stream.next_offset)] = stream
        while len(self._streams) > 256:
            self._streams.popitem(last=False)
        if stream.template is not None and not stream.done:
            # While the kernel takes this batch in (in the reader's thread), make the next one
            start = stream.next_offset
            data, items = self._fill(stream, nodeid, size, plus)
            stream.prepared = (start, size, data, items)

    def _fill(
        self, stream: _Stream, nodeid: int, size: int, plus: bool
    ) -> tuple[bytes, list[tuple[str, Node | None]]]:
        """As many entries as fit in ``size`` bytes, and the entries sent (the hot loop of a listing)."""
        chunks: list[bytes] = []
        sent: list[tuple[str, Node | None]] = []
        used = 0
        offset = stream.next_offset
        entries: Iterator[tuple[str, Node | None]] = (
            itertools.chain(stream.pending, stream.entries) if stream.pending else stream.entries
        )
        stream.pending = []
        attrs = plus and stream.plus and stream.generation == self._generation
        pack_dirent = k.DIRENT.pack
        fixed = PLUS_FIXED if plus else 24
        slot_no, listing = stream.slot if stream.slot is not None else (0, None)
        names = listing.names if listing is not None else None
        base = self.table.positional(slot_no, 0)
        template = stream.template if attrs else None
        if template is not None:
            head, tail = template
            pack_uniform = UNIFORM_ENTRY.pack
        dirpath = stream.dirpath
        exhausted = True
        for item in entries:
            name, node = item
            raw = name.encode('utf-8', 'surrogateescape')
            n = len(raw)
            reclen = (fixed + n + 7) & ~7
            if used + reclen > size:
                stream.pending = [item]
                exhausted = False
                break
            offset += 1
            used += reclen
            sent.append(item)
            pad = ZEROS[: reclen - n - fixed]
            if template is not None and node is None and name[0] != '.':
                index = offset - 3  # entries 0 and 1 are the dots
                if index == len(names):  # type: ignore[arg-type]
                    names.append(name)  # type: ignore[union-attr]
                if index < len(names) and names[index] == name:  # type: ignore[arg-type,index]
                    ino = base | index
                    chunks.append(
                        pack_uniform(ino, head, ino, tail, ino, offset, n, k.S_IFREG_TYPE) + raw + pad
                    )
                    continue
            if template is not None and node is None and name[0] == '.' and name not in ('.', '..'):
                node = self.source.lookup(join(dirpath, name))  # a dotfile beside the samples
            is_dir = node.is_dir if node is not None else name == '..'
            dtype = k.S_IFDIR_TYPE if is_dir else k.S_IFREG_TYPE
            if not plus:
                chunks.append(pack_dirent(UNKNOWN_INO, offset, n, dtype) + raw + pad)
            elif not attrs or node is None or name == '.' or name == '..':
                ino = nodeid if name == '.' else UNKNOWN_INO
                chunks.append(NO_ENTRY + pack_dirent(ino, offset, n, dtype) + raw + pad)
            else:
                if names is not None and not is_dir:
                    index = offset - 3
                    if index == len(names):
                        names.append(name)
                    if index < len(names) and names[index] == name:
                        ino = base | index
                    else:
                        ino = self.new_entry(join(dirpath, name), node)
                else:
                    ino = self.new_entry(join(dirpath, name), node)
                chunks.append(self.entry_out(ino, node) + pack_dirent(ino, offset, n, dtype) + raw + pad)
        stream.next_offset = offset
        stream.done = exhausted
        return b''.join(chunks), sent

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
