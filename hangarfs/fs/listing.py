"""Directory listings of the low-level adapter: READDIR and READDIRPLUS replies, built in bulk.

A listing streams from the view with offsets (bounded memory for millions of samples) and is served
from one state of the view. READDIRPLUS entries carry attributes, so ``find``, ``du`` and ``ls -l`` need
no LOOKUP per file: the samples of a fixed-shape column from their names alone (one template, a
positional number each), other entries from their nodes. While the kernel takes one batch in (in the
reader's thread, on the other core) the next one is made, so the two costs overlap.
"""

from __future__ import annotations

import errno
import itertools
import struct
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from hangarfs.fs import kernel as k
from hangarfs.fs.follow import pinned
from hangarfs.fs.inodes import InodeTable, Listing, join
from hangarfs.fs.nodes import DIR_HINT
from hangarfs.fs.view import MountSource, Node

READDIRPLUS_NAMED_LIMIT = 300_000  # a moving view's listing above this carries no attributes
PLUS_FIXED = k.ENTRY_OUT.size + k.DIRENT.size  # 152 bytes before a READDIRPLUS entry's name
UNIFORM_ENTRY = struct.Struct('<Q32sQ80sQQII')  # number, entry head, ino, attributes, dirent
NO_ENTRY = bytes(k.ENTRY_OUT.size)  # a READDIRPLUS entry without attributes (nodeid 0)
UNKNOWN_INO = 0xFFFFFFFF  # the d_ino of an entry listed without its number
ZEROS = bytes(8)


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
    """A directory of the view as ``(name, node)``: ``list_nodes``, or ``list_names`` with None for a
    file and ``DIR_HINT`` (a directory without attributes) for a directory."""
    if with_nodes:
        return source.list_nodes(path)
    names = source.list_names(path)
    if names is None:
        return None
    return ((name, DIR_HINT if is_dir else None) for name, is_dir in names)


class Listings:
    """The listing requests of ``LowLevelFS`` (a mixin: it uses the adapter's table, view and channel)."""

    table: InodeTable
    source: MountSource
    policy: Any
    ch: k.Channel | None
    uid: int
    gid: int
    _streams: OrderedDict[tuple[int, int, int], _Stream]
    _generation: int
    _file_attr_mode: int

    def dir_path(self, ino: int) -> str:
        raise NotImplementedError

    def new_entry(self, path: str, node: Node) -> int:
        raise NotImplementedError

    def entry_out(self, ino: int, node: Node) -> bytes:
        raise NotImplementedError

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
            elif not attrs or node is None or node is DIR_HINT or name == '.' or name == '..':
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
