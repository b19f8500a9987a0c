"""The staging area of a branch as a writable directory tree: the logic of the staging mount.

Plain Python, no FUSE: ``mount.py`` translates FUSE calls into these methods, so everything the
staging mount does is tested in-process too.
"""

from __future__ import annotations

import errno
import json
import threading
import time
from typing import Any

from hangarfs.engine.checkout import WriterCheckout
from hangarfs.engine.columns import Column, NestedColumn, _ColumnBase
from hangarfs.engine.keys import check_name
from hangarfs.errors import InvalidKey, ReadOnlyError
from hangarfs.fs.commit_view import (
    META_DIR,
    METADATA_DIR,
    SCHEMA_FILE,
    CheckoutView,
    commit_json,
)
from hangarfs.fs.names import EXTENSIONS, key_to_name, name_to_key, parse_sample_file_name
from hangarfs.fs.nodes import FILE, Node, dir_node, split_path
from hangarfs.fs.npy import NpyFormatError
from hangarfs.fs.source import Names, Nodes, WritableMountSource
from hangarfs.fs.staging_paths import KIND_OF_EXTENSION, Target, WriteHandle, decode_file
from hangarfs.fs.writebuf import WriteBuffer


class StagingView(CheckoutView, WritableMountSource):
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
                return dir_node(self.mtime_ns, entries=0)
            if len(parts) == 2 and (parts[0], parts[1]) in self._pending_samples:
                return dir_node(self.mtime_ns, entries=0)
            if parts and parts[0] in self._pending_columns:
                return None
            return super().lookup(path)

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
            extra.update({c: dir_node(self.mtime_ns) for c in self._pending_columns})
        elif len(parts) == 1:
            extra.update({s: dir_node(self.mtime_ns) for c, s in self._pending_samples if c == parts[0]})
        return extra

    def _committed_layout(self, path: str) -> bool:
        parts = split_path(path)
        return not (parts and parts[0] in self._pending_columns)

    def list_names(self, path: str) -> Names | None:
        with self.lock:
            base = super().list_names(path) if self._committed_layout(path) else None
            extra = self._extra_entries(path)
        if extra is None:
            return base
        return self._merged(base, {name: node.is_dir for name, node in extra.items()})

    def list_nodes(self, path: str) -> Nodes | None:
        with self.lock:
            base = super().list_nodes(path) if self._committed_layout(path) else None
            extra = self._extra_entries(path)
        if extra is None:
            return base
        return self._merged(base, extra)

    @staticmethod
    def _merged(base: Any, extra: dict[str, Any]) -> Any:
        for name, value in base or ():
            if name not in extra:
                yield name, value
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
            entries = [n for n, _ in (self.list_names(path) or ()) if n != SCHEMA_FILE]
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
