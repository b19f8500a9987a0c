"""One commit as a directory tree: the layout logic shared by every view of a checkout.

Layout (see DESIGN §6 and ``names.py`` for the key <-> file name mapping)::

    .hangarfs/commit.json   .hangarfs/metadata/KEY
    COLUMN/.schema.json     COLUMN/KEY.npy (.txt for str, .bin for bytes)
    NESTED/KEY/SUBKEY.npy

:class:`CheckoutView` holds that logic over any source of columns and metadata; :class:`CommitView`
shows one commit (immutable: the kernel may cache it for ever); the staging view (``staging_view.py``)
shows the writer's staging area with the same layout.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from hangarfs.engine.checkout import ReaderCheckout
from hangarfs.engine.columns import Column, _ColumnBase
from hangarfs.engine.keys import Key
from hangarfs.engine.nested import NestedColumn
from hangarfs.engine.records import CommitRecord
from hangarfs.engine.samples import SampleInfo
from hangarfs.engine.store import RepoStore
from hangarfs.errors import InvalidKey
from hangarfs.fs.names import EXTENSIONS, file_names, key_to_name, name_to_key, parse_sample_file_name
from hangarfs.fs.nodes import FILE, Node, SampleFile, content_node, dir_node, split_path
from hangarfs.fs.npy import header_for
from hangarfs.fs.source import MountSource, Names, Nodes

META_DIR = '.hangarfs'
COMMIT_FILE = 'commit.json'
METADATA_DIR = 'metadata'
SCHEMA_FILE = '.schema.json'


def schema_json(col: _ColumnBase) -> bytes:
    """The bytes of ``COLUMN/.schema.json``."""
    info = {
        'column': col.column,
        'kind': col.column_type,
        'layout': col.column_layout,
        'dtype': str(col.dtype) if col.dtype is not None and col.column_type == 'ndarray' else None,
        'shape': list(col.shape) if col.shape is not None else None,
        'variable_shape': col.variable_shape,
        'backend': col.backend_name,
        'backend_code': col.backend,
        'backend_options': col.backend_options,
        'samples': len(col),
        'file_extension': EXTENSIONS[col.column_type],
    }
    return (json.dumps(info, indent=2) + '\n').encode()


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
            properties=dict(rec.properties),
        )
    info.update(extra)
    return (json.dumps(info, indent=2) + '\n').encode()


def parse_key(name: str) -> Key | None:
    """The key a sample directory name stands for, or None."""
    try:
        return name_to_key(name)
    except InvalidKey:
        return None


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

    # ---------------------------------------------------------------- nodes

    def _file_node(self, col: _ColumnBase, key: Any, info: SampleInfo) -> Node:
        header = header_for(info.dtype, info.shape) if info.kind == 'ndarray' else b''
        return Node(
            FILE,
            len(header) + info.nbytes,
            self.mtime_ns,
            info.digest,
            sample=SampleFile(col, key, info, header),
        )

    def _schema_node(self, col: _ColumnBase) -> Node:
        return content_node(schema_json(col), self.mtime_ns)

    # ---------------------------------------------------------------- MountSource

    def lookup(self, path: str) -> Node | None:
        parts = split_path(path)
        n = len(parts)
        if n == 0:
            return dir_node(self.mtime_ns, self._version, entries=len(self._column_map()) + 1)
        first = parts[0]
        if first == META_DIR:
            if n == 1:
                return dir_node(self.mtime_ns, self._version, entries=2)
            if parts[1] == COMMIT_FILE and n == 2:
                return content_node(self._commit_json(), self.mtime_ns)
            if parts[1] == METADATA_DIR:
                if n == 2:
                    return dir_node(self.mtime_ns, self._version, entries=len(self._meta()))
                if n == 3 and parts[2] in self._meta():
                    return content_node(self._meta()[parts[2]].encode('utf-8'), self.mtime_ns)
            return None
        col = self._column_map().get(first)
        if col is None:
            return None
        if n == 1:
            return dir_node(self.mtime_ns, self._version, entries=len(col) + 1)
        name = parts[1]
        if n == 2 and name == SCHEMA_FILE:
            return self._schema_node(col)
        if isinstance(col, NestedColumn):
            key = parse_key(name)
            if key is None:
                return None
            if n == 2:
                return dir_node(self.mtime_ns, self._version) if key in col else None
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

    def list_names(self, path: str) -> Names | None:
        parts = split_path(path)
        if len(parts) == 1 and parts[0] != META_DIR:
            col = self._column_map().get(parts[0])
            if col is None:
                return None
            return self._column_names(col)
        nodes = self.list_nodes(path)
        return None if nodes is None else ((name, node.is_dir) for name, node in nodes)

    def list_nodes(self, path: str) -> Nodes | None:
        parts = split_path(path)
        n = len(parts)
        if n == 0:
            return self._root_nodes()
        if parts[0] == META_DIR:
            if n == 1:
                return iter(
                    [
                        (COMMIT_FILE, content_node(self._commit_json(), self.mtime_ns)),
                        (METADATA_DIR, dir_node(self.mtime_ns, self._version, entries=len(self._meta()))),
                    ]
                )
            if n == 2 and parts[1] == METADATA_DIR:
                meta = sorted(self._meta().items())
                return ((k, content_node(v.encode('utf-8'), self.mtime_ns)) for k, v in meta)
            return None
        col = self._column_map().get(parts[0])
        if col is None:
            return None
        if n == 1:
            return self._column_nodes(col)
        if n == 2 and isinstance(col, NestedColumn):
            key = parse_key(parts[1])
            if key is None or key not in col:
                return None
            ext = EXTENSIONS[col.column_type]
            return (
                (key_to_name(sub) + ext, self._file_node(col, (key, sub), info))
                for sub, info in col.iter_sub_infos(key)
            )
        return None

    def _root_nodes(self) -> Nodes:
        for name in [META_DIR, *sorted(self._column_map())]:
            node = self.lookup('/' + name)
            if node is not None:
                yield name, node

    def _column_names(self, col: _ColumnBase) -> Names:
        yield SCHEMA_FILE, False
        if isinstance(col, NestedColumn):
            for key in col:
                yield key_to_name(key), True
            return
        assert isinstance(col, Column)
        ext = EXTENSIONS[col.column_type]
        for keys in col.key_blocks():
            yield from zip(file_names(keys, ext), itertools.repeat(False))

    def _column_nodes(self, col: _ColumnBase) -> Nodes:
        yield SCHEMA_FILE, self._schema_node(col)
        if isinstance(col, NestedColumn):
            sample_dir = dir_node(self.mtime_ns, self._version)
            for key in col:
                yield key_to_name(key), sample_dir
            return
        assert isinstance(col, Column)
        ext = EXTENSIONS[col.column_type]
        for key, info in col.iter_infos():
            yield key_to_name(key) + ext, self._file_node(col, key, info)


class CommitView(CheckoutView):
    """A read-only view of one commit (or of an empty branch when ``commit`` is '')."""

    def __init__(self, store: RepoStore, commit: str, *, ref: str = '', branch: str | None = None) -> None:
        self.store = store
        self.commit = commit
        self.ref = ref or commit
        self.checkout = ReaderCheckout(store, commit, branch) if commit else None
        rec = store.objects.commit(commit) if commit else None
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
