"""The filesystem logic as plain Python: resolve a path, list a directory, stat a node, read a range.

Nothing here imports FUSE; ``mount.py`` translates FUSE calls into these methods, so everything the
mount does is tested in-process too. The shape follows ratarmount's ``MountSource``:

- :class:`CommitView` shows one commit (immutable: the kernel may cache it forever);
- :class:`BranchView` follows a branch: it re-reads the head at most every ``interval`` seconds and
  serves each lookup and each whole listing from one commit;
- :class:`AllRefsView` composes ``branches/NAME``, ``tags/NAME`` and ``commits/DIGEST`` from those,
  each built only when first entered.

Layout of a commit (see DESIGN §6 and ``names.py`` for the key <-> file name mapping)::

    .hangarfs/commit.json   .hangarfs/metadata/KEY
    COLUMN/.schema.json     COLUMN/KEY.npy (.txt for str, .bin for bytes)
    NESTED/KEY/SUBKEY.npy
"""

from __future__ import annotations

import abc
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hangarfs.engine.checkout import ReaderCheckout
from hangarfs.engine.columns import Column, NestedColumn, _ColumnBase
from hangarfs.engine.keys import Key
from hangarfs.engine.samples import SampleInfo
from hangarfs.engine.store import RepoStore
from hangarfs.errors import InvalidKey, RefNotFound
from hangarfs.fs.names import EXTENSIONS, key_to_name, name_to_key, parse_sample_file_name
from hangarfs.fs.npy import header_for

META_DIR = '.hangarfs'
COMMIT_FILE = 'commit.json'
METADATA_DIR = 'metadata'
SCHEMA_FILE = '.schema.json'
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
    entries: int | None = None  # for directories, the number of entries when known cheaply

    @property
    def is_dir(self) -> bool:
        return self.kind == DIR


def split_path(path: str) -> list[str]:
    return [p for p in path.split('/') if p]


def _content_node(data: bytes, mtime_ns: int) -> Node:
    return Node(FILE, len(data), mtime_ns, hashlib.blake2b(data, digest_size=16).digest(), content=data)


def _dir_node(mtime_ns: int, version: bytes = b'', entries: int | None = None) -> Node:
    return Node(DIR, 0, mtime_ns, version, entries=entries)


def read_node(node: Node, size: int, offset: int) -> bytes:
    """Bytes ``[offset, offset + size)`` of a file node (a sample file is its header + stored bytes)."""
    if node.content is not None:
        return node.content[offset : offset + size]
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


class MountSource(abc.ABC):
    """The interface the FUSE adapter uses. Paths are absolute within the view (``/a/b``)."""

    @abc.abstractmethod
    def lookup(self, path: str) -> Node | None:
        """The node at ``path``, or None if there is none."""

    @abc.abstractmethod
    def list(self, path: str, with_nodes: bool = False) -> Iterator[tuple[str, Node | None]] | None:
        """The entries of directory ``path`` (streamed), or None if it is not a directory."""

    def read(self, node: Node, size: int, offset: int) -> bytes:
        return read_node(node, size, offset)

    @abc.abstractmethod
    def is_immutable(self) -> bool:
        """True when nothing below can ever change (the kernel may cache without limit)."""

    def describe(self) -> dict[str, Any]:
        """What this view shows, for logs and `hangarfs mounts`."""
        return {}

    def refresh(self) -> None:  # noqa: B027 (optional: only moving views have anything to re-read)
        """Re-read moving refs now (a moving view calls this from a watcher thread)."""


# --------------------------------------------------------------------------------------- one commit


class CommitView(MountSource):
    """A read-only view of one commit (or of an empty branch when ``commit`` is '')."""

    def __init__(self, store: RepoStore, commit: str, *, ref: str = '', branch: str | None = None) -> None:
        self.store = store
        self.commit = commit
        self.ref = ref or commit
        self.checkout = ReaderCheckout(store, commit, branch) if commit else None
        rec = store.commit_record(commit) if commit else None
        self.mtime_ns = rec.time_ns if rec is not None else time.time_ns()
        info: dict[str, Any] = {'ref': self.ref, 'branch': branch, 'commit': commit or None}
        if rec is not None:
            info.update(
                parents=list(rec.parents),
                author=rec.author,
                email=rec.email,
                time=time.strftime('%Y-%m-%dT%H:%M:%S%z', time.localtime(rec.time)),
                time_ns=rec.time_ns,
                message=rec.message,
            )
        self._commit_json = (json.dumps(info, indent=2) + '\n').encode()
        self._version = bytes.fromhex(commit) if commit else b''
        self._columns = dict(self.checkout.columns.items()) if self.checkout is not None else {}
        self._metadata: dict[str, str] | None = None

    def is_immutable(self) -> bool:
        return True

    def describe(self) -> dict[str, Any]:
        return {'ref': self.ref, 'commit': self.commit}

    # ---------------------------------------------------------------- helpers

    def _meta(self) -> dict[str, str]:
        if self._metadata is None:
            self._metadata = dict(self.checkout.metadata.items()) if self.checkout is not None else {}
        return self._metadata

    def _schema_json(self, col: _ColumnBase) -> bytes:
        info = {
            'column': col.column,
            'kind': col.column_type,
            'layout': col.column_layout,
            'dtype': str(col.dtype) if col.column_type == 'ndarray' else None,
            'shape': list(col.shape) if col.shape is not None else None,
            'variable_shape': col.variable_shape,
            'backend': col.backend_name,
            'backend_code': col.backend,
            'backend_options': col.backend_options,
            'samples': len(col),
            'file_extension': EXTENSIONS[col.column_type],
        }
        return (json.dumps(info, indent=2) + '\n').encode()

    def _file_node(self, col: _ColumnBase, key: Any, info: SampleInfo) -> Node:
        header = header_for(info.dtype, info.shape) if info.kind == 'ndarray' else b''  # type: ignore[arg-type]
        return Node(
            FILE,
            len(header) + info.nbytes,
            self.mtime_ns,
            info.digest,
            sample=SampleFile(col, key, info, header),
        )

    def _parse_key(self, name: str) -> Key | None:
        try:
            return name_to_key(name)
        except InvalidKey:
            return None

    # ---------------------------------------------------------------- MountSource

    def lookup(self, path: str) -> Node | None:
        parts = split_path(path)
        n = len(parts)
        if n == 0:
            return _dir_node(self.mtime_ns, self._version, entries=len(self._columns) + 1)
        first = parts[0]
        if first == META_DIR:
            if n == 1:
                return _dir_node(self.mtime_ns, self._version, entries=2)
            if parts[1] == COMMIT_FILE and n == 2:
                return _content_node(self._commit_json, self.mtime_ns)
            if parts[1] == METADATA_DIR:
                if n == 2:
                    return _dir_node(self.mtime_ns, self._version, entries=len(self._meta()))
                if n == 3 and parts[2] in self._meta():
                    return _content_node(self._meta()[parts[2]].encode('utf-8'), self.mtime_ns)
            return None
        col = self._columns.get(first)
        if col is None:
            return None
        if n == 1:
            return _dir_node(self.mtime_ns, self._version, entries=len(col) + 1)
        name = parts[1]
        if n == 2 and name == SCHEMA_FILE:
            return _content_node(self._schema_json(col), self.mtime_ns)
        if isinstance(col, NestedColumn):
            key = self._parse_key(name)
            if key is None:
                return None
            if n == 2:
                return _dir_node(self.mtime_ns, self._version) if key in col else None
            if n == 3:
                try:
                    sub = parse_sample_file_name(parts[2], col.column_type)
                except InvalidKey:
                    return None
                info = col.info(key, sub)
                return self._file_node(col, (key, sub), info) if info is not None else None
            return None
        if n != 2:
            return None
        try:
            key = parse_sample_file_name(name, col.column_type)
        except InvalidKey:
            return None
        assert isinstance(col, Column)
        info = col.info(key)
        return self._file_node(col, key, info) if info is not None else None

    def list(self, path: str, with_nodes: bool = False) -> Iterator[tuple[str, Node | None]] | None:
        parts = split_path(path)
        n = len(parts)
        if n == 0:
            return self._list_root(with_nodes)
        if parts[0] == META_DIR:
            if n == 1:
                return iter(
                    [
                        (COMMIT_FILE, self.lookup(f'/{META_DIR}/{COMMIT_FILE}')),
                        (METADATA_DIR, self.lookup(f'/{META_DIR}/{METADATA_DIR}')),
                    ]
                )
            if n == 2 and parts[1] == METADATA_DIR:
                return (
                    (k, _content_node(v.encode('utf-8'), self.mtime_ns))
                    for k, v in sorted(self._meta().items())
                )
            return None
        col = self._columns.get(parts[0])
        if col is None:
            return None
        if n == 1:
            return self._list_column(col, with_nodes)
        if n == 2 and isinstance(col, NestedColumn):
            key = self._parse_key(parts[1])
            if key is None or key not in col:
                return None
            ext = EXTENSIONS[col.column_type]
            return (
                (key_to_name(sub) + ext, self._file_node(col, (key, sub), info) if with_nodes else None)
                for sub, info in col.iter_sub_infos(key)
            )
        return None

    def _list_root(self, with_nodes: bool) -> Iterator[tuple[str, Node | None]]:
        yield META_DIR, self.lookup('/' + META_DIR) if with_nodes else None
        for name in sorted(self._columns):
            yield name, self.lookup('/' + name) if with_nodes else None

    def _list_column(self, col: _ColumnBase, with_nodes: bool) -> Iterator[tuple[str, Node | None]]:
        yield SCHEMA_FILE, _content_node(self._schema_json(col), self.mtime_ns) if with_nodes else None
        if isinstance(col, NestedColumn):
            for key in col:
                yield key_to_name(key), _dir_node(self.mtime_ns, self._version) if with_nodes else None
            return
        assert isinstance(col, Column)
        ext = EXTENSIONS[col.column_type]
        if not with_nodes:
            for key in col:
                yield key_to_name(key) + ext, None
            return
        for key, info in col.iter_infos():
            yield key_to_name(key) + ext, self._file_node(col, key, info)


# ---------------------------------------------------------------------------------- a moving branch


class BranchView(MountSource):
    """Follows a branch: a new commit shows within ``interval`` seconds, never mixed with the old one.

    Each lookup and each whole listing is served from one commit. Nodes returned earlier keep reading
    the commit they came from, so a file opened before the branch moved keeps its version.
    """

    def __init__(self, store: RepoStore, branch: str, *, interval: float = 0.25) -> None:
        self.store = store
        self.branch = branch
        self.interval = interval
        head = store.branch_head(branch)
        if head is None:
            raise RefNotFound(branch, 'branch')
        self._view = CommitView(store, head, ref=branch, branch=branch)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def current(self) -> CommitView:
        now = time.monotonic()
        if now - self._checked < self.interval:
            return self._view
        with self._lock:
            if now - self._checked >= self.interval:
                head = self.store.branch_head(self.branch)
                if head is not None and head != self._view.commit:
                    self._view = CommitView(self.store, head, ref=self.branch, branch=self.branch)
                self._checked = time.monotonic()
            return self._view

    def is_immutable(self) -> bool:
        return False

    def refresh(self) -> None:
        self.current()

    def describe(self) -> dict[str, Any]:
        return {'ref': self.branch, 'commit': self._view.commit, 'follows_branch': True}

    def lookup(self, path: str) -> Node | None:
        return self.current().lookup(path)

    def list(self, path: str, with_nodes: bool = False) -> Iterator[tuple[str, Node | None]] | None:
        return self.current().list(path, with_nodes)


# ---------------------------------------------------------------------------------------- every ref


class AllRefsView(MountSource):
    """``branches/NAME/...``, ``tags/NAME/...``, ``commits/DIGEST/...``: each view built when entered."""

    GROUPS = ('branches', 'tags', 'commits')

    def __init__(self, store: RepoStore, *, interval: float = 0.25) -> None:
        self.store = store
        self.interval = interval
        self._views: dict[tuple[str, str], MountSource] = {}
        self._lock = threading.Lock()
        self.mtime_ns = time.time_ns()

    def is_immutable(self) -> bool:
        return False

    def refresh(self) -> None:
        for view in list(self._views.values()):
            view.refresh()

    def describe(self) -> dict[str, Any]:
        return {'ref': '--all-refs'}

    def _names(self, group: str) -> list[str]:
        if group == 'branches':
            return sorted(self.store.list_refs('branch'))
        if group == 'tags':
            return sorted(self.store.list_refs('tag'))
        with self.store.history.read() as txn:
            return [
                k.decode() for k in txn.cursor(db=self.store.history.db('commits')).iternext(values=False)
            ]

    def _view(self, group: str, name: str) -> MountSource | None:
        key = (group, name)
        view = self._views.get(key)
        if view is not None:
            return view
        try:
            if group == 'branches':
                if self.store.branch_head(name) is None:
                    return None
                view = BranchView(self.store, name, interval=self.interval)
            elif group == 'tags':
                commit = self.store.tag_commit(name)
                if commit is None:
                    return None
                view = CommitView(self.store, commit, ref=name)
            else:
                if len(name) != 64 or not self.store.has_commit(name):
                    return None
                view = CommitView(self.store, name)
        except RefNotFound:
            return None
        with self._lock:
            return self._views.setdefault(key, view)

    def _route(self, path: str) -> tuple[list[str], MountSource | None, str]:
        parts = split_path(path)
        if len(parts) < 2 or parts[0] not in self.GROUPS:
            return parts, None, ''
        view = self._view(parts[0], parts[1])
        if view is not None and parts[0] == 'branches' and self.store.branch_head(parts[1]) is None:
            with self._lock:  # the branch was deleted
                self._views.pop((parts[0], parts[1]), None)
            view = None
        return parts, view, '/' + '/'.join(parts[2:])

    def is_immutable_path(self, path: str) -> bool:
        parts = split_path(path)
        return len(parts) >= 2 and parts[0] in ('tags', 'commits')

    def lookup(self, path: str) -> Node | None:
        parts, view, rest = self._route(path)
        if not parts:
            return _dir_node(self.mtime_ns, entries=3)
        if len(parts) == 1:
            return _dir_node(self.mtime_ns) if parts[0] in self.GROUPS else None
        return view.lookup(rest) if view is not None else None

    def list(self, path: str, with_nodes: bool = False) -> Iterator[tuple[str, Node | None]] | None:
        parts, view, rest = self._route(path)
        if not parts:
            return iter([(g, _dir_node(self.mtime_ns)) for g in self.GROUPS])
        if len(parts) == 1:
            if parts[0] not in self.GROUPS:
                return None
            return (
                (name, _dir_node(self.mtime_ns) if with_nodes else None) for name in self._names(parts[0])
            )
        return view.list(rest, with_nodes) if view is not None else None


# --------------------------------------------------------------------------------------- mount info


class InfoView(MountSource):
    """Adds ``/.hangarfs/mount.json`` (who serves this mount, from where) to another view."""

    INFO_FILE = 'mount.json'

    def __init__(self, inner: MountSource, info: dict[str, Any]) -> None:
        self.inner = inner
        self.info = info
        self._mtime = time.time_ns()

    def _info_node(self) -> Node:
        info = {**self.info, **self.inner.describe()}
        return _content_node((json.dumps(info, indent=2) + '\n').encode(), self._mtime)

    def is_immutable(self) -> bool:
        return self.inner.is_immutable()

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def refresh(self) -> None:
        self.inner.refresh()

    def lookup(self, path: str) -> Node | None:
        parts = split_path(path)
        if parts == [META_DIR, self.INFO_FILE]:
            return self._info_node()
        node = self.inner.lookup(path)
        if node is None and parts == [META_DIR]:
            return _dir_node(self._mtime)
        return node

    def list(self, path: str, with_nodes: bool = False) -> Iterator[tuple[str, Node | None]] | None:
        parts = split_path(path)
        inner = self.inner.list(path, with_nodes)
        if parts == [META_DIR]:
            extra = (self.INFO_FILE, self._info_node() if with_nodes else None)
            return itertools.chain(inner or iter(()), [extra])
        if not parts and inner is not None and self.inner.lookup('/' + META_DIR) is None:
            return itertools.chain([(META_DIR, _dir_node(self._mtime) if with_nodes else None)], inner)
        return inner

    def read(self, node: Node, size: int, offset: int) -> bytes:
        return self.inner.read(node, size, offset)
