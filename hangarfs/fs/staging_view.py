"""The staging area of a branch as a writable directory tree: the logic of the staging mount.

Plain Python, no FUSE: ``mount.py`` translates FUSE calls into these methods, so everything the
staging mount does is tested in-process too. Reads show the staged state. A sample file is staged when
it is closed (``flush``, from the file's state at that moment): its bytes are validated (a complete
``.npy`` of the column's dtype and shape, UTF-8 for ``.txt``) and a failure raises a hangarfs error,
stages nothing and leaves what the sample held. What a written name becomes (a sample, a schema, a
metadata value or scratch space) is decided by ``staging_paths.py``; the namespace operations
(unlink, rename, mkdir, rmdir) are in ``staging_tree.py``. Every method holds the view's lock: the
engine's writer is not shared between threads.
"""

from __future__ import annotations

import errno
import hashlib
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from hangarfs.engine.attr_table import AttrTable
from hangarfs.engine.columns import Column, _ColumnBase
from hangarfs.engine.nested import NestedColumn
from hangarfs.engine.store import RepoStore
from hangarfs.engine.writer_checkout import WriterCheckout
from hangarfs.fs.commit_view import SCHEMA_FILE, CheckoutView, commit_json
from hangarfs.fs.file_attrs import FileAttrs, apply
from hangarfs.fs.names import key_to_name
from hangarfs.fs.nodes import FILE, Node, dir_node, split_path
from hangarfs.fs.schema_file import parse_schema_file
from hangarfs.fs.source import Names, Nodes, WritableMountSource
from hangarfs.fs.staging_paths import (
    META,
    SAMPLE,
    SCHEMA,
    SCRATCH,
    Target,
    WriteHandle,
    classify,
    decode_file,
)
from hangarfs.fs.staging_schema import SchemaWriter
from hangarfs.fs.staging_times import AttributeOps
from hangarfs.fs.staging_tree import NamespaceOps
from hangarfs.fs.usage import RepositoryUsage
from hangarfs.fs.writebuf import WriteBuffer

_ABSENT = ('absent',)


@dataclass(eq=False)
class Scratch:
    """A scratch file: bytes kept by the daemon until renamed onto a sample name (gone at unmount)."""

    buffer: WriteBuffer
    mtime_ns: int
    mode: int | None = None


_T = TypeVar('_T')


class StagingView(AttributeOps, NamespaceOps, SchemaWriter, CheckoutView, WritableMountSource):
    """The staging area of a branch as a writable directory (the writer's view)."""

    co: WriterCheckout

    def __init__(self, checkout: WriterCheckout, *, branch: str, attrs: AttrTable | None = None) -> None:
        self.co = checkout
        self.branch = branch
        self.lock = threading.RLock()
        base = checkout.commit_hash
        self.attrs = FileAttrs(
            attrs, base, self._store.objects.commit(base).time_ns if base else time.time_ns()
        )
        self.mtime_ns = self.attrs.default_ns  # files and directories never changed through this mount
        self._version = b''
        self._pending_columns: set[str] = set()  # made by mkdir, schema not known yet
        self._pending_samples: set[tuple[str, str]] = set()  # (column, sample dir) of nested columns
        self._hidden_schemas: set[str] = set()  # columns whose .schema.json was unlinked (rm -r)
        self._scratch: dict[str, Scratch] = {}
        self._writing: dict[str, list[WriteHandle]] = {}
        self._columns: dict[str, _ColumnBase] | None = None  # dropped whenever columns may change
        self._base_columns = frozenset(self._store.objects.snapshot(base).columns) if base else frozenset()
        self._usage = RepositoryUsage(self._store.dir)
        self._date_staged_samples()

    @property
    def _store(self) -> RepoStore:
        return self.co._store

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
        rec = self._store.objects.commit(base) if base else None
        return commit_json(self.branch, self.branch, base, rec, staging=True)

    # ---------------------------------------------------------------- reading

    def lookup(self, path: str) -> Node | None:
        with self.lock:
            handles = self._writing.get(path)
            if handles:
                h = handles[-1]
                return Node(
                    FILE, h.buffer.size, h.mtime_ns or h.changed_ns, b'', buffer=h.buffer, mode=h.mode
                )
            scratch = self._scratch.get(path)
            if scratch is not None:
                return Node(
                    FILE, scratch.buffer.size, scratch.mtime_ns, b'', buffer=scratch.buffer, mode=scratch.mode
                )
            parts = split_path(path)
            if len(parts) == 1 and parts[0] in self._pending_columns:
                return self.attrs.applied(path, dir_node(self.mtime_ns, entries=0))
            if len(parts) == 2 and (parts[0], parts[1]) in self._pending_samples:
                return self.attrs.applied(path, dir_node(self.mtime_ns, entries=0))
            if parts and parts[0] in self._pending_columns:
                return None
            if len(parts) == 2 and parts[1] == SCHEMA_FILE and parts[0] in self._hidden_schemas:
                return None
            node = super().lookup(path)
            if node is None:
                return None
            return self.attrs.applied(path or '/', node, self._attr_version(parts, node))

    def _base_lookup(self, path: str) -> Node | None:
        """The node of the committed-layout logic, without this view's additions."""
        return super().lookup(path)

    def _attr_version(self, parts: list[str], node: Node) -> bytes:
        """What a recorded mtime is kept for: a file's content; a schema file's schema (its sample
        count, also shown in it, changes with every sample)."""
        if len(parts) == 2 and parts[1] == SCHEMA_FILE:
            col = self._column_map().get(parts[0])
            if col is not None:
                return hashlib.blake2b(col.schema.to_bytes(), digest_size=16).digest()
        return node.version

    def _extra_entries(self, path: str) -> dict[str, Node] | None:
        """Entries of directory ``path`` the committed layout does not know: files being written,
        scratch files, directories made by mkdir; None when ``path`` is no directory."""
        parts = split_path(path)
        if self.lookup(path) is None:
            return None
        prefix = path.rstrip('/') + '/'
        extra: dict[str, Node] = {}
        for p in [*self._scratch, *self._writing]:
            if p.startswith(prefix) and '/' not in p[len(prefix) :]:
                node = self.lookup(p)
                if node is not None:
                    extra[p[len(prefix) :]] = node
        if not parts:
            extra.update({c: self.lookup('/' + c) or dir_node(self.mtime_ns) for c in self._pending_columns})
        elif len(parts) == 1:
            for c, s in self._pending_samples:
                if c == parts[0]:
                    extra[s] = self.lookup(f'/{c}/{s}') or dir_node(self.mtime_ns)
        return extra

    def _hidden(self, path: str) -> set[str]:
        parts = split_path(path)
        return {SCHEMA_FILE} if len(parts) == 1 and parts[0] in self._hidden_schemas else set()

    def _committed_layout(self, path: str) -> bool:
        parts = split_path(path)
        return not (parts and parts[0] in self._pending_columns)

    def list_names(self, path: str) -> Names | None:
        with self.lock:
            base = super().list_names(path) if self._committed_layout(path) else None
            extra = self._extra_entries(path)
            hidden = self._hidden(path)
        if extra is None:
            return base
        return _merged(base, {name: node.is_dir for name, node in extra.items()}, hidden)

    def list_nodes(self, path: str) -> Nodes | None:
        with self.lock:
            base = super().list_nodes(path) if self._committed_layout(path) else None
            extra = self._extra_entries(path)
            hidden = self._hidden(path)
            recorded = dict(self.attrs.in_dir(path))
        if extra is None:
            return base
        if base is not None and recorded:
            base = self._dated(path, base, recorded)
        return _merged(base, extra, hidden)

    def _dated(self, path: str, base: Nodes, recorded: dict[str, Any]) -> Nodes:
        parts = split_path(path)
        for name, node in base:
            attr = recorded.get(name)
            if attr is not None:
                version = self._attr_version([*parts, name], node) if name == SCHEMA_FILE else None
                node = apply(node, attr, version)
            yield name, node

    # ---------------------------------------------------------------- what a path means

    def _target(self, path: str) -> Target:
        parts = split_path(path)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, 'the mount root is a directory', path)
        col = self._column_map().get(parts[0])
        return classify(path, parts, col, parts[0] in self._pending_columns)

    # ---------------------------------------------------------------- writing files

    def create(self, path: str) -> WriteHandle:
        with self.lock:
            if self.lookup(path) is not None:
                return self.open_write(path, truncate=True)
            handle = WriteHandle(path, self._target(path), WriteBuffer(), dirty=True)
            self._writing.setdefault(path, []).append(handle)
            self.attrs.touch_dir(_parent(path))
            return handle

    def open_write(self, path: str, *, truncate: bool) -> WriteHandle:
        with self.lock:
            node = self.lookup(path)
            if node is None:
                raise FileNotFoundError(errno.ENOENT, 'no such file', path)
            if node.is_dir:
                raise IsADirectoryError(errno.EISDIR, 'is a directory', path)
            target = self._target(path)
            if truncate:
                buffer = WriteBuffer()
            else:  # read only when written or read: `touch` of a large sample costs nothing
                buffer = WriteBuffer(size=node.size, loader=lambda: self.read(node, node.size, 0))
            handle = WriteHandle(path, target, buffer, dirty=truncate)
            handle.mode = node.mode
            if not truncate:
                handle.mtime_ns = node.mtime_ns  # unchanged until written
            self._writing.setdefault(path, []).append(handle)
            return handle

    def write(self, handle: WriteHandle, data: bytes, offset: int) -> int:
        handle.dirty = True
        handle.mtime_ns = None
        handle.changed_ns = time.time_ns()
        return handle.buffer.write(data, offset)

    def truncate(self, handle: WriteHandle, length: int) -> None:
        handle.dirty = True
        handle.mtime_ns = None
        handle.changed_ns = time.time_ns()
        handle.buffer.truncate(length)

    def flush(self, handle: WriteHandle) -> None:
        """Stage what the handle wrote (once per change); raises if it cannot, and then the target
        holds again what it held before this handle staged anything (an earlier flush of the same
        open file may have staged a state that the file has since left)."""
        if not handle.dirty or handle.detached:
            return
        with self.lock:
            tracked = handle.target.kind in (SAMPLE, META)
            if tracked and handle.staged is None:
                handle.before = self._held(handle.target)
            try:
                self._put(handle.target, handle.path, handle.buffer, keep=handle)
            except BaseException as err:
                handle.failure = err
                if handle.staged is not None and self._held(handle.target) == handle.staged:
                    self._put_back(handle.target, handle.before)
                handle.staged = None
                raise
            handle.failure = None
            handle.dirty = False
            version = None
            if tracked:
                handle.staged = self._held(handle.target)
                version = getattr(handle.staged, 'digest', None)
            mtime = handle.mtime_ns or handle.changed_ns
            self._date(handle.path, handle.target, mtime, handle.mode, version=version)
            self.attrs.persist()

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
            return None if handle.detached else handle.failure

    def set_size(self, path: str, length: int) -> None:
        """``truncate(path)``: the newest open handle's file, or the stored file (staged now)."""
        with self.lock:
            handles = self._writing.get(path)
            if handles:
                self.truncate(handles[-1], length)
                return
            node = self.lookup(path)
            if node is None:
                raise FileNotFoundError(errno.ENOENT, 'no such file', path)
            if node.is_dir:
                raise IsADirectoryError(errno.EISDIR, 'is a directory', path)
            if node.size == length:
                return
            buffer = WriteBuffer(self.read(node, min(length, node.size), 0))
            buffer.truncate(length)
            target = self._target(path)
            self._put(target, path, buffer)
            self._date(path, target, None, node.mode)
            self.attrs.persist()

    def _held(self, target: Target) -> Any:
        """What a sample or metadata target holds now (a SampleInfo, a str, or _ABSENT)."""
        if target.kind == META:
            return self.co.metadata.get(target.name, _ABSENT)
        col = self._column_map().get(target.column)
        if col is None:
            return _ABSENT
        if isinstance(col, NestedColumn):
            info = col.info(target.key, target.subkey)
        else:
            assert isinstance(col, Column)
            info = col.info(target.key)
        return _ABSENT if info is None else info

    def _put_back(self, target: Target, held: Any) -> None:
        """Make a target hold again what :meth:`_held` returned for it."""
        if target.kind == META:
            if held is _ABSENT:
                self.co.metadata.pop(target.name, None)
            else:
                self.co.metadata[target.name] = held
            return
        col = self._column_map().get(target.column)
        if col is None:
            return
        info = None if held is _ABSENT else held
        if target.subkey is not None:
            assert isinstance(col, NestedColumn)
            col.restore(target.key, target.subkey, info)
        else:
            assert isinstance(col, Column)
            col.restore(target.key, info)

    def _put(self, target: Target, path: str, buffer: WriteBuffer, keep: WriteHandle | None = None) -> None:
        """Make ``target`` hold the bytes in ``buffer``: stage a sample, a schema, a metadata value."""
        if target.kind == SCRATCH:
            old = self._scratch.get(path)
            if keep is not None:
                keep.kept = True
                self._scratch[path] = Scratch(buffer, time.time_ns())
            else:
                self._scratch[path] = Scratch(WriteBuffer(buffer.getvalue()), time.time_ns())
            if old is not None and old.buffer is not buffer:
                old.buffer.close()
            return
        if target.kind == SAMPLE:  # staged straight from the buffer's memory (no copy)
            self._stage_sample(target, decode_file(buffer.frozen(), target.file_kind, path))
        elif target.kind == META:
            self.co.metadata[target.name] = decode_file(buffer.getvalue(), 'str', path)
        else:
            self._write_schema(target.column, parse_schema_file(buffer.getvalue(), path), path)

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
        self._hidden_schemas.discard(target.column)
        if nested:  # copy=False: the buffer is not written again before the sample is stored
            assert isinstance(col, NestedColumn)
            col.put(target.key, target.subkey, value, copy=False)
            self._pending_samples.discard((target.column, key_to_name(target.key)))
        else:
            assert isinstance(col, Column)
            col.put(target.key, value, copy=False)

    # ---------------------------------------------------------------- commit and sync

    def commit(self, message: str) -> str:
        with self.lock:
            digest = self.co.commit(message)
            self._after_writer_change()
            self.attrs.committed(digest)
            self.attrs.persist(now=True)
            return digest

    def sync(self) -> None:
        """Make everything staged so far durable against power loss."""
        with self.lock:
            self.attrs.persist(now=True)
            self.co._staging.env.sync()

    def writer_changed(self) -> None:
        """The writer's columns or staging area changed outside this view's write methods."""
        with self.lock:
            self._after_writer_change()

    def was_reset(self) -> None:
        """The staging area was reset to its branch's head: files not written since show its time."""
        with self.lock:
            base = self.co.commit_hash
            self.attrs.reset(self._store.objects.commit(base).time_ns if base else time.time_ns())
            self.mtime_ns = self.attrs.default_ns
            self._pending_columns.clear()
            self._pending_samples.clear()
            self._after_writer_change()
            self.attrs.persist(now=True)

    def _after_writer_change(self) -> None:
        self._columns = None
        names = self._column_map()
        self._pending_columns -= set(names)
        self._hidden_schemas &= set(names)
        self._base_columns = frozenset(self._store.objects.snapshot(self.co.commit_hash).columns)

    def usage(self) -> tuple[int, int]:
        """(bytes the repository's store holds, bytes free on its filesystem), for ``df``."""
        return self._usage()

    def close(self) -> None:
        """Write what is left of the files' times and modes (at unmount, before the writer closes)."""
        with self.lock:
            self.attrs.persist(now=True)

    def scratch_files(self) -> list[str]:
        """Paths of scratch files (dropped at unmount unless renamed onto a sample name)."""
        with self.lock:
            return sorted(self._scratch)


def _parent(path: str) -> str:
    return path.rstrip('/').rpartition('/')[0] or '/'


def _merged(
    base: Iterable[tuple[str, _T]] | None, extra: dict[str, _T], hidden: set[str]
) -> Iterator[tuple[str, _T]]:
    for name, value in base or ():
        if name not in extra and name not in hidden:
            yield name, value
    yield from extra.items()


__all__ = ['SCHEMA', 'Scratch', 'StagingView']
