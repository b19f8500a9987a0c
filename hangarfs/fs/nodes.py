"""The node model of a mounted view: what a ``stat`` or a ``read`` of one path needs, as a frozen value.

A :class:`Node` is a file or a directory. A file's bytes come from one of three places: ``content``
(small generated files such as ``commit.json``), ``sample`` (a stored sample: a rendered ``.npy``
header followed by the stored bytes, read range by range), or ``buffer`` (a file being written through
the staging mount, or a scratch file).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from hangarfs.engine.columns import _ColumnBase
from hangarfs.engine.samples import SampleInfo
from hangarfs.fs.writebuf import WriteBuffer

DIR = 'dir'
FILE = 'file'


@dataclass(frozen=True, eq=False)
class SampleFile:
    """What reading a sample file needs: its column, key, stored-bytes info and rendered header."""

    column: _ColumnBase
    key: Any
    info: SampleInfo
    header: bytes


@dataclass(frozen=True, eq=False)
class Node:
    """A file or directory of the view, with everything a stat or a read needs."""

    kind: str
    size: int
    mtime_ns: int
    version: bytes  # equal versions have equal bytes (a content digest)
    content: bytes | None = None  # small generated files
    sample: SampleFile | None = None
    buffer: WriteBuffer | None = None  # a file being written, or a scratch file (staging view)
    entries: int | None = None  # for directories, the number of entries when known cheaply
    mode: int | None = None  # permission bits set by chmod through a writable view; None: the default

    @property
    def is_dir(self) -> bool:
        return self.kind == DIR


def split_path(path: str) -> list[str]:
    return [p for p in path.split('/') if p]


def content_node(data: bytes, mtime_ns: int) -> Node:
    """A small generated file."""
    return Node(FILE, len(data), mtime_ns, hashlib.blake2b(data, digest_size=16).digest(), content=data)


def dir_node(mtime_ns: int, version: bytes = b'', entries: int | None = None) -> Node:
    return Node(DIR, 0, mtime_ns, version, entries=entries)


DIR_HINT = dir_node(0)  # marks a directory in a listing that carries no attributes


def read_node(node: Node, size: int, offset: int) -> bytes:
    """Bytes ``[offset, offset + size)`` of a file node (a sample file is its header + stored bytes)."""
    if node.content is not None:
        return node.content[offset : offset + size]
    if node.buffer is not None:
        return node.buffer.read(size, offset)
    sample = node.sample
    if sample is None:
        raise IsADirectoryError(f'not a file: {node}')
    end = min(offset + size, node.size)
    if offset >= end:
        return b''
    header = sample.header
    hlen = len(header)
    if end <= hlen:
        return header[offset:end]
    data = sample.column.read_bytes(sample.info, max(offset, hlen) - hlen, end - hlen, key=sample.key)
    return header[offset:hlen] + data if offset < hlen else data
