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
import errno
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from hangarfs.engine.checkout import ReaderCheckout, WriterCheckout
from hangarfs.engine.columns import Column, NestedColumn, _ColumnBase
from hangarfs.engine.keys import Key, check_name
from hangarfs.engine.records import CommitRecord
from hangarfs.engine.samples import SampleInfo
from hangarfs.engine.store import RepoStore
from hangarfs.errors import InvalidKey, ReadOnlyError, RefNotFound
from hangarfs.fs.names import EXTENSIONS, file_names, key_to_name, name_to_key, parse_sample_file_name
from hangarfs.fs.npy import NpyFormatError, header_for, parse_npy
from hangarfs.fs.writebuf import WriteBuffer

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
    buffer: WriteBuffer | None = None  # a file being written, or a scratch file (staging view)
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

    def uniform_file_size(self, path: str) -> int | None:
        """The size of every sample file in directory ``path`` when the schema fixes it, else None.

        A listing can then give every file's attributes without reading each sample's record (the
        low-level adapter's READDIRPLUS of a million samples); dotfiles in it are not samples."""
        return None


# --------------------------------------------------------------------------------------- one commit


class CheckoutView(MountSource):
    """The layout logic: a checkout's columns, samples and metadata as files (see the module doc).

    Subclasses say where columns and metadata come from: a commit (cached for ever) or the writer's
    staging area (read afresh on every access).
    """

    mtime_ns: int
    _version: bytes

    def _column_map(self) -> dict[str, _ColumnBase]:
        raise NotImplementedError

    def _meta(self) -> dict[str, str]:
        raise NotImplementedError

    def _commit_json(self) -> bytes:
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers

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
            return _dir_node(self.mtime_ns, self._version, entries=len(self._column_map()) + 1)
        first = parts[0]
        if first == META_DIR:
            if n == 1:
                return _dir_node(self.mtime_ns, self._version, entries=2)
            if parts[1] == COMMIT_FILE and n == 2:
                return _content_node(self._commit_json(), self.mtime_ns)
            if parts[1] == METADATA_DIR:
                if n == 2:
                    return _dir_node(self.mtime_ns, self._version, entries=len(self._meta()))
                if n == 3 and parts[2] in self._meta():
                    return _content_node(self._meta()[parts[2]].encode('utf-8'), self.mtime_ns)
            return None
        col = self._column_map().get(first)
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
        col = self._column_map().get(parts[0])
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

    def uniform_file_size(self, path: str) -> int | None:
        parts = split_path(path)
        col = self._column_map().get(parts[0]) if len(parts) == 1 else None
        if col is None or col.column_type != 'ndarray' or col.contains_subsamples or col.variable_shape:
            return None
        shape = tuple(col.shape or ())
        dtype = np.dtype(col.dtype)
        return len(header_for(dtype.str, shape)) + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize

    def _list_root(self, with_nodes: bool) -> Iterator[tuple[str, Node | None]]:
        yield META_DIR, self.lookup('/' + META_DIR) if with_nodes else None
        for name in sorted(self._column_map()):
            yield name, self.lookup('/' + name) if with_nodes else None

    def _list_column(self, col: _ColumnBase, with_nodes: bool) -> Iterator[tuple[str, Node | None]]:
        yield SCHEMA_FILE, _content_node(self._schema_json(col), self.mtime_ns) if with_nodes else None
        if isinstance(col, NestedColumn):
            sample_dir = _dir_node(self.mtime_ns, self._version)  # always: it tells a listing "directory"
            for key in col:
                yield key_to_name(key), sample_dir
            return
        assert isinstance(col, Column)
        ext = EXTENSIONS[col.column_type]
        if not with_nodes:
            for keys in col.key_blocks():
                yield from zip(file_names(keys, ext), itertools.repeat(None))
            return
        for key, info in col.iter_infos():
            yield key_to_name(key) + ext, self._file_node(col, key, info)


class CommitView(CheckoutView):
    """A read-only view of one commit (or of an empty branch when ``commit`` is '')."""

    def __init__(self, store: RepoStore, commit: str, *, ref: str = '', branch: str | None = None) -> None:
        self.store = store
        self.commit = commit
        self.ref = ref or commit
        self.checkout = ReaderCheckout(store, commit, branch) if commit else None
        rec = store.commit_record(commit) if commit else None
        self.mtime_ns = rec.time_ns if rec is not None else time.time_ns()
        self._json = commit_json(self.ref, branch, commit, rec)
        self._version = bytes.fromhex(commit) if commit else b''
        self._columns = dict(self.checkout.columns.items()) if self.checkout is not None else {}
        self._metadata: dict[str, str] | None = None

    def is_immutable(self) -> bool:
        return True

    def describe(self) -> dict[str, Any]:
        return {'ref': self.ref, 'commit': self.commit}

    def _column_map(self) -> dict[str, _ColumnBase]:
        return self._columns

    def _meta(self) -> dict[str, str]:
        if self._metadata is None:
            self._metadata = dict(self.checkout.metadata.items()) if self.checkout is not None else {}
        return self._metadata

    def _commit_json(self) -> bytes:
        return self._json


def commit_json(ref: str, branch: str | None, commit: str, rec: CommitRecord | None, **extra: Any) -> bytes:
    """The bytes of ``.hangarfs/commit.json``."""
    info: dict[str, Any] = {'ref': ref, 'branch': branch, 'commit': commit or None}
    if rec is not None:
        info.update(
            parents=list(rec.parents),
            author=rec.author,
            email=rec.email,
            time=time.strftime('%Y-%m-%dT%H:%M:%S%z', time.localtime(rec.time)),
            time_ns=rec.time_ns,
            message=rec.message,
        )
    info.update(extra)
    return (json.dumps(info, indent=2) + '\n').encode()


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
                view = self._branch_view(name)
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

    def _branch_view(self, name: str) -> MountSource:
        """The view of ``branches/NAME`` (the low-level adapter's follows moves by invalidation)."""
        return BranchView(self.store, name, interval=self.interval)

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

    def uniform_file_size(self, path: str) -> int | None:
        return self.inner.uniform_file_size(path)


# ----------------------------------------------------------------------------- the staging area, writable


@dataclass(frozen=True)
class Target:
    """What a file written through the staging view becomes when it is closed."""

    kind: str  # 'sample', 'schema', 'meta' or 'scratch'
    column: str = ''
    key: Any = None
    subkey: Any = None  # nested columns: the subsample key
    file_kind: str = ''  # 'ndarray', 'str' or 'bytes', from the file's extension
    name: str = ''  # metadata key


@dataclass(eq=False)
class WriteHandle:
    """An open file being written; its bytes are staged when it is flushed (closed).

    One open file may be flushed several times (each ``close()`` of a duplicated descriptor flushes,
    as a shell redirect does), so what counts is its state at the *last* flush: a flush whose bytes
    are invalid puts back what the target held before this handle staged anything.
    """

    path: str
    target: Target
    buffer: WriteBuffer
    dirty: bool = False
    kept: bool = False  # the buffer became a scratch file's content
    before: Any = None  # what the target held before this handle first staged (see StagingView._held)
    staged: Any = None  # what this handle's last successful flush made the target hold
    failure: BaseException | None = None  # why the last flush staged nothing (logged at release)


KIND_OF_EXTENSION = {ext: kind for kind, ext in EXTENSIONS.items()}


def decode_file(data: bytes | memoryview, kind: str, path: str) -> Any:
    """The sample value a written file holds: an array (.npy), a str (UTF-8 .txt) or bytes (.bin)."""
    if kind == 'ndarray':
        return parse_npy(data)[1]
    if kind == 'str':
        try:
            return bytes(data).decode('utf-8')
        except UnicodeDecodeError as err:
            raise NpyFormatError(f'{path} is not UTF-8 text ({err.reason} at byte {err.start})') from err
    return bytes(data)


class StagingView(CheckoutView):
    """The staging area of a branch as a writable directory (the writer's view).

    Reads show the staged state. A sample file is staged when it is closed (``flush``): its bytes are
    validated (a complete ``.npy`` of the column's dtype and shape, UTF-8 for ``.txt``) and a failure
    raises a hangarfs error and stages nothing. ``mkdir`` makes a column whose schema comes from its
    first sample or from a ``.schema.json`` written into it; dotfiles in a column are scratch space
    (the temporary files of ``rsync`` and editors): kept in the daemon until renamed to a sample name.
    Every method holds the view's lock: the engine's writer is not shared between threads.
    """

    def __init__(self, checkout: WriterCheckout, *, branch: str) -> None:
        self.co = checkout
        self.branch = branch
        self.lock = threading.RLock()
        self.mtime_ns = time.time_ns()
        self._version = b''
        self._pending_columns: set[str] = set()  # made by mkdir, schema not known yet
        self._pending_samples: set[tuple[str, str]] = set()  # (column, sample dir) of nested columns
        self._scratch: dict[str, WriteBuffer] = {}
        self._writing: dict[str, list[WriteHandle]] = {}
        self._columns: dict[str, _ColumnBase] | None = None  # dropped whenever columns may change

    def is_immutable(self) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        return {'ref': self.branch, 'commit': self.co.commit_hash or None, 'mode': 'staging'}

    def _column_map(self) -> dict[str, _ColumnBase]:
        columns = self._columns
        if columns is None:
            columns = self._columns = dict(self.co.columns.items())
        return columns

    def _meta(self) -> dict[str, str]:
        return dict(self.co.metadata.items())

    def _commit_json(self) -> bytes:
        base = self.co.commit_hash
        rec = self.co._store.commit_record(base) if base else None
        return commit_json(self.branch, self.branch, base, rec, staging=True)

    def _touch(self) -> None:
        self.mtime_ns = time.time_ns()

    # ---------------------------------------------------------------- reading

    def lookup(self, path: str) -> Node | None:
        with self.lock:
            handles = self._writing.get(path)
            if handles:
                buf = handles[-1].buffer
                return Node(FILE, buf.size, self.mtime_ns, b'', buffer=buf)
            scratch = self._scratch.get(path)
            if scratch is not None:
                return Node(FILE, scratch.size, self.mtime_ns, b'', buffer=scratch)
            parts = split_path(path)
            if len(parts) == 1 and parts[0] in self._pending_columns:
                return _dir_node(self.mtime_ns, entries=0)
            if len(parts) == 2 and (parts[0], parts[1]) in self._pending_samples:
                return _dir_node(self.mtime_ns, entries=0)
            if parts and parts[0] in self._pending_columns:
                return None
            return super().lookup(path)

    def list(self, path: str, with_nodes: bool = False) -> Iterator[tuple[str, Node | None]] | None:
        with self.lock:
            parts = split_path(path)
            base = None if (parts and parts[0] in self._pending_columns) else super().list(path, with_nodes)
            if base is None and self.lookup(path) is None:
                return None
            prefix = path.rstrip('/') + '/'
            extra: dict[str, Node | None] = {}
            for p in [*self._scratch, *self._writing]:
                if p.startswith(prefix) and '/' not in p[len(prefix) :]:
                    extra[p[len(prefix) :]] = self.lookup(p) if with_nodes else None
            if not parts:
                extra.update({c: _dir_node(self.mtime_ns) for c in self._pending_columns})
            elif len(parts) == 1:
                extra.update({s: _dir_node(self.mtime_ns) for c, s in self._pending_samples if c == parts[0]})
        return self._merge_listing(base, extra)

    @staticmethod
    def _merge_listing(
        base: Iterator[tuple[str, Node | None]] | None, extra: dict[str, Node | None]
    ) -> Iterator[tuple[str, Node | None]]:
        for name, node in base or ():
            if name not in extra:
                yield name, node
        yield from extra.items()

    # ---------------------------------------------------------------- what a path means

    def _target(self, path: str) -> Target:
        parts = split_path(path)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, 'the mount root is a directory', path)
        if parts[0] == META_DIR:
            if len(parts) == 3 and parts[1] == METADATA_DIR:
                return Target('meta', name=check_name(parts[2], 'metadata key'))
            raise ReadOnlyError(f'{path}: under .hangarfs only metadata/KEY files can be written')
        if len(parts) == 1:
            raise InvalidKey(
                f'{path}: the mount root holds columns only; write samples into a column directory '
                '(mkdir a new one)'
            )
        column, name = parts[0], parts[-1]
        col = self._column_map().get(column)
        if col is None and column not in self._pending_columns:
            raise FileNotFoundError(errno.ENOENT, f'no column {column!r}', path)
        if name.startswith('.'):
            if name == SCHEMA_FILE and len(parts) == 2:
                return Target('schema', column)
            return Target('scratch')
        if col is None:
            ext = '.' + name.rsplit('.', 1)[-1] if '.' in name else ''
            kind = KIND_OF_EXTENSION.get(ext)
            if kind is None:
                raise InvalidKey(f'{path}: a sample file ends with .npy (arrays), .txt (str) or .bin (bytes)')
            nested = len(parts) == 3
        else:
            kind = col.column_type
            nested = col.contains_subsamples
        if nested:
            if len(parts) != 3:
                raise InvalidKey(
                    f'{path}: column {column!r} is nested; write COLUMN/SAMPLE/SUBKEY{EXTENSIONS[kind]}'
                )
            if col is not None and not isinstance(col, NestedColumn):
                raise InvalidKey(
                    f'{path}: column {column!r} is flat; samples are COLUMN/KEY{EXTENSIONS[kind]}'
                )
            return Target('sample', column, name_to_key(parts[1]), parse_sample_file_name(name, kind), kind)
        if len(parts) != 2:
            raise InvalidKey(f'{path}: column {column!r} is flat; samples are COLUMN/KEY{EXTENSIONS[kind]}')
        return Target('sample', column, parse_sample_file_name(name, kind), None, kind)

    # ---------------------------------------------------------------- writing files

    def create(self, path: str) -> WriteHandle:
        with self.lock:
            if self.lookup(path) is not None:
                return self.open_write(path, truncate=True)
            handle = WriteHandle(path, self._target(path), WriteBuffer(), dirty=True)
            self._writing.setdefault(path, []).append(handle)
            return handle

    def open_write(self, path: str, *, truncate: bool) -> WriteHandle:
        with self.lock:
            node = self.lookup(path)
            if node is None:
                raise FileNotFoundError(errno.ENOENT, 'no such file', path)
            if node.is_dir:
                raise IsADirectoryError(errno.EISDIR, 'is a directory', path)
            target = self._target(path)
            initial = b'' if truncate else self.read(node, node.size, 0)
            handle = WriteHandle(path, target, WriteBuffer(initial), dirty=truncate)
            self._writing.setdefault(path, []).append(handle)
            return handle

    def write(self, handle: WriteHandle, data: bytes, offset: int) -> int:
        handle.dirty = True
        return handle.buffer.write(data, offset)

    def truncate(self, handle: WriteHandle, length: int) -> None:
        handle.dirty = True
        handle.buffer.truncate(length)

    def flush(self, handle: WriteHandle) -> None:
        """Stage what the handle wrote (once per change); raises if it cannot, and then the target
        holds again what it held before this handle staged anything (an earlier flush of the same
        open file may have staged a state that the file has since left)."""
        if not handle.dirty:
            return
        with self.lock:
            tracked = handle.target.kind in ('sample', 'meta')
            if tracked and handle.staged is None:
                handle.before = self._held(handle.target)
            try:
                self._put(handle.target, handle.path, handle.buffer, keep=handle)
            except BaseException as err:
                handle.failure = err
                if handle.staged is not None and self._held(handle.target) == handle.staged:
                    self._put_back(handle.target, handle.before)
                    self._touch()
                handle.staged = None
                raise
            handle.failure = None
            handle.dirty = False
            if tracked:
                handle.staged = self._held(handle.target)
            self._touch()

    def release(self, handle: WriteHandle) -> BaseException | None:
        """Forget a closed file; returns why its last flush staged nothing, if it failed."""
        with self.lock:
            handles = self._writing.get(handle.path, [])
            if handle in handles:
                handles.remove(handle)
            if not handles:
                self._writing.pop(handle.path, None)
            if not handle.kept:
                handle.buffer.close()
            return handle.failure

    _ABSENT = ('absent',)

    def _held(self, target: Target) -> Any:
        """What a sample or metadata target holds now (a SampleInfo, a str, or _ABSENT)."""
        if target.kind == 'meta':
            return self.co.metadata.get(target.name, self._ABSENT)
        col = self._column_map().get(target.column)
        if col is None:
            return self._ABSENT
        if isinstance(col, NestedColumn):
            info = col.info(target.key, target.subkey)
        else:
            assert isinstance(col, Column)
            info = col.info(target.key)
        return self._ABSENT if info is None else info

    def _put_back(self, target: Target, held: Any) -> None:
        """Make a target hold again what :meth:`_held` returned for it."""
        if target.kind == 'meta':
            if held is self._ABSENT:
                self.co.metadata.pop(target.name, None)
            else:
                self.co.metadata[target.name] = held
            return
        col = self._column_map().get(target.column)
        if col is None:
            return
        info = None if held is self._ABSENT else held
        if target.subkey is not None:
            assert isinstance(col, NestedColumn)
            col.restore(target.key, target.subkey, info)
        else:
            assert isinstance(col, Column)
            col.restore(target.key, info)

    def _put(self, target: Target, path: str, buffer: WriteBuffer, keep: WriteHandle | None = None) -> None:
        """Make ``target`` hold the bytes in ``buffer``: stage a sample, a schema, a metadata value."""
        if target.kind == 'scratch':
            old = self._scratch.get(path)
            if keep is not None:
                keep.kept = True
                self._scratch[path] = buffer
            else:
                self._scratch[path] = WriteBuffer(buffer.getvalue())
            if old is not None and old is not buffer:
                old.close()
            return
        if target.kind == 'sample':  # staged straight from the buffer's memory (no copy)
            self._stage_sample(target, decode_file(buffer.frozen(), target.file_kind, path))
        elif target.kind == 'meta':
            self.co.metadata[target.name] = decode_file(buffer.getvalue(), 'str', path)
        else:
            self._apply_schema(target.column, buffer.getvalue(), path)

    def _stage_sample(self, target: Target, value: Any) -> None:
        col = self._column_map().get(target.column)
        nested = target.subkey is not None
        if col is None:
            name = target.column
            if target.file_kind == 'ndarray':
                col = self.co.add_ndarray_column(name, prototype=value, contains_subsamples=nested)
            elif target.file_kind == 'str':
                col = self.co.add_str_column(name, nested)
            else:
                col = self.co.add_bytes_column(name, nested)
            self._pending_columns.discard(name)
            self._columns = None
        if nested:  # copy=False: the buffer is not written again before the sample is stored
            assert isinstance(col, NestedColumn)
            col.put(target.key, target.subkey, value, copy=False)
            self._pending_samples.discard((target.column, key_to_name(target.key)))
        else:
            assert isinstance(col, Column)
            col.put(target.key, value, copy=False)

    def _apply_schema(self, column: str, data: bytes, path: str) -> None:
        """A ``.schema.json`` written into an empty new column sets its schema."""
        if column not in self._pending_columns:
            raise InvalidKey(
                f'{path}: a schema can only be written into a new, empty column (mkdir it first); '
                'this column exists already'
            )
        try:
            spec = json.loads(data.decode('utf-8'))
            if not isinstance(spec, dict):
                raise ValueError('expected a JSON object')
        except (UnicodeDecodeError, ValueError) as err:
            raise NpyFormatError(f'{path}: not a JSON object ({err})') from err
        kind = spec.get('kind', 'ndarray')
        nested = spec.get('layout', 'flat') == 'nested'
        backend = spec.get('backend_code') or spec.get('backend')
        options = spec.get('backend_options') or None
        try:
            if kind == 'ndarray':
                self.co.add_ndarray_column(
                    column,
                    shape=spec.get('shape'),
                    dtype=spec.get('dtype'),
                    variable_shape=bool(spec.get('variable_shape', False)),
                    contains_subsamples=nested,
                    backend=backend,
                    backend_options=options,
                )
            elif kind in ('str', 'bytes'):
                add = self.co.add_str_column if kind == 'str' else self.co.add_bytes_column
                add(column, nested, backend=backend, backend_options=options)
            else:
                raise ValueError(f"expected kind 'ndarray', 'str' or 'bytes', got {kind!r} instead")
        except (TypeError, ValueError) as err:
            raise NpyFormatError(f'{path}: {err}') from err
        self._pending_columns.discard(column)
        self._columns = None

    # ---------------------------------------------------------------- names and directories

    def unlink(self, path: str) -> None:
        with self.lock:
            scratch = self._scratch.pop(path, None)
            if scratch is not None:
                scratch.close()
                return
            if self.lookup(path) is None:
                raise FileNotFoundError(errno.ENOENT, 'no such file', path)
            target = self._target(path)
            if target.kind == 'meta':
                del self.co.metadata[target.name]
            elif target.kind == 'schema':
                raise PermissionError(
                    errno.EPERM, '.schema.json goes with its column; rmdir the column', path
                )
            elif target.kind == 'sample':
                col = self._column_map()[target.column]
                if target.subkey is not None:
                    del col[target.key, target.subkey]
                else:
                    del col[target.key]
            self._touch()

    def rename(self, old: str, new: str) -> None:
        with self.lock:
            node = self.lookup(old)
            if node is None:
                raise FileNotFoundError(errno.ENOENT, 'no such file', old)
            if node.is_dir:
                raise OSError(errno.EXDEV, 'directories cannot be renamed here; copy and delete instead', old)
            src, dst = self._target(old), self._target(new)
            if src.kind == dst.kind == 'sample' and src.column == dst.column:
                col = self._column_map()[src.column]
                if src.subkey is None:
                    col.rename(src.key, dst.key)  # type: ignore[attr-defined]
                    self._touch()
                    return
                if src.key == dst.key:
                    col.rename(src.key, src.subkey, dst.subkey)  # type: ignore[attr-defined]
                    self._touch()
                    return
            buffer = self._scratch.get(old)
            if buffer is None:
                buffer = WriteBuffer(self.read(node, node.size, 0))
            self._put(dst, new, buffer)
            if old in self._scratch:
                self._scratch.pop(old).close()
            else:
                self.unlink(old)
            self._touch()

    def mkdir(self, path: str) -> None:
        with self.lock:
            parts = split_path(path)
            if self.lookup(path) is not None:
                raise FileExistsError(errno.EEXIST, 'exists already', path)
            if len(parts) == 1 and parts[0] != META_DIR:
                self._pending_columns.add(check_name(parts[0], 'column name'))
                return
            if len(parts) == 2:
                col = self._column_map().get(parts[0])
                if parts[0] in self._pending_columns or isinstance(col, NestedColumn):
                    name_to_key(parts[1])
                    self._pending_samples.add((parts[0], parts[1]))
                    return
                if col is not None:
                    raise InvalidKey(f'{path}: column {parts[0]!r} is flat; it holds files, not directories')
            raise InvalidKey(f'{path}: directories are columns (top level) or samples of a nested column')

    def rmdir(self, path: str) -> None:
        with self.lock:
            parts = split_path(path)
            node = self.lookup(path)
            if node is None:
                raise FileNotFoundError(errno.ENOENT, 'no such directory', path)
            if not node.is_dir:
                raise NotADirectoryError(errno.ENOTDIR, 'not a directory', path)
            entries = [n for n, _ in (self.list(path) or ()) if n != SCHEMA_FILE]
            if entries:
                raise OSError(errno.ENOTEMPTY, 'directory not empty', path)
            if len(parts) == 1 and parts[0] in self._pending_columns:
                self._pending_columns.discard(parts[0])
            elif len(parts) == 1 and parts[0] != META_DIR:
                self.co.columns.delete(parts[0])  # type: ignore[attr-defined]
                self._columns = None
            elif len(parts) == 2 and (parts[0], parts[1]) in self._pending_samples:
                self._pending_samples.discard((parts[0], parts[1]))
            else:
                raise PermissionError(errno.EPERM, 'this directory cannot be removed', path)
            self._touch()

    def set_size(self, path: str, length: int) -> None:
        """``truncate(path)`` without an open handle: stage the shortened (or extended) file now."""
        with self.lock:
            node = self.lookup(path)
            if node is None:
                raise FileNotFoundError(errno.ENOENT, 'no such file', path)
            if node.size == length:
                return
            buffer = WriteBuffer(self.read(node, min(length, node.size), 0))
            buffer.truncate(length)
            self._put(self._target(path), path, buffer)
            self._touch()

    # ---------------------------------------------------------------- commit and sync

    def commit(self, message: str) -> str:
        with self.lock:
            digest = self.co.commit(message)
            self._columns = None
            self._touch()
            return digest

    def sync(self) -> None:
        """Make everything staged so far durable against power loss."""
        with self.lock:
            self.co._staging.env.sync()
