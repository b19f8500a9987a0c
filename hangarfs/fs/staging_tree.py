"""Names and directories in the staging view: unlink, rename, mkdir, rmdir (a part of StagingView).

- ``rm -r COLUMN`` works: unlinking a column's ``.schema.json`` hides it (the schema goes with the
  column, which ``rmdir`` then removes once its samples are gone); unlinking the last subsample of a
  nested sample leaves its directory, empty, for ``rmdir``.
- ``rename`` moves a sample within its column without copying it, a scratch file onto a sample name
  (validated then: the temporary-file-then-rename of ``rsync``, ``sed -i`` and editors), a sample onto
  a scratch name (an editor's backup) and a column to a new name. A sample that another column cannot
  hold fails with EXDEV, so that ``mv`` copies it instead and the copy's ``close()`` says why.
- ``mkdir`` makes a column (top level) or a sample of a nested column; ``rmdir`` removes empty ones.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from hangarfs.engine.column_ops import rename_column
from hangarfs.engine.columns import Column, _ColumnBase
from hangarfs.engine.keys import check_name
from hangarfs.engine.nested import NestedColumn
from hangarfs.errors import InvalidKey, SchemaMismatch
from hangarfs.fs.commit_view import META_DIR, SCHEMA_FILE
from hangarfs.fs.names import key_to_name, name_to_key
from hangarfs.fs.nodes import Node, split_path
from hangarfs.fs.npy import NpyFormatError
from hangarfs.fs.staging_paths import META, SAMPLE, SCHEMA, SCRATCH, Target, WriteHandle
from hangarfs.fs.writebuf import WriteBuffer


class NamespaceOps:
    """unlink, rename, mkdir and rmdir of :class:`~hangarfs.fs.staging_view.StagingView`."""

    co: Any
    lock: Any
    attrs: Any
    _columns: dict[str, _ColumnBase] | None
    _pending_columns: set[str]
    _pending_samples: set[tuple[str, str]]
    _hidden_schemas: set[str]
    _scratch: dict[str, Any]
    _writing: dict[str, list[WriteHandle]]

    if TYPE_CHECKING:  # provided by StagingView

        def lookup(self, path: str) -> Node | None: ...

        def list_names(self, path: str) -> Any: ...

        def read(self, node: Node, size: int, offset: int) -> bytes: ...

        def flush(self, handle: WriteHandle) -> None: ...

        def _column_map(self) -> dict[str, _ColumnBase]: ...

        def _target(self, path: str) -> Target: ...

        def _put(
            self, target: Target, path: str, buffer: WriteBuffer, keep: WriteHandle | None = None
        ) -> None: ...

        def _date(self, path: str, target: Target, mtime_ns: int | None, mode: int | None) -> None: ...

    # ---------------------------------------------------------------- unlink

    def unlink(self, path: str) -> None:
        with self.lock:
            handles = self._writing.pop(path, None)
            for h in handles or ():
                h.detached = True  # still open, but its bytes are no file's any more
            scratch = self._scratch.pop(path, None)
            if scratch is not None:
                scratch.buffer.close()
            elif self.lookup(path) is None:
                if handles is None:
                    raise FileNotFoundError(errno.ENOENT, 'no such file', path)
            else:
                self._remove(path)
            self.attrs.forget(path)
            self.attrs.touch_dir(_parent(path))
            self.attrs.persist()

    def _remove(self, path: str) -> None:
        """Remove the stored file at ``path`` (a sample, a metadata value, a schema file)."""
        node = self.lookup(path)
        if node is not None and node.is_dir:
            raise IsADirectoryError(errno.EISDIR, 'is a directory (rmdir it)', path)
        target = self._target(path)
        if target.kind == META:
            del self.co.metadata[target.name]
        elif target.kind == SCHEMA:
            self._hidden_schemas.add(target.column)  # rm -r: the column goes at rmdir
        elif target.kind == SAMPLE:
            col = self._column_map()[target.column]
            if target.subkey is None:
                del col[target.key]
                return
            assert isinstance(col, NestedColumn)
            del col[target.key, target.subkey]
            if target.key not in col:  # the last subsample: the sample's directory stays, empty
                self._pending_samples.add((target.column, key_to_name(target.key)))

    # ---------------------------------------------------------------- rename

    def rename(self, old: str, new: str) -> None:
        with self.lock:
            if old == new:
                return
            node = self.lookup(old)
            if node is None:
                raise FileNotFoundError(errno.ENOENT, 'no such file', old)
            if node.is_dir:
                self._rename_dir(old, new)
            else:
                self._rename_file(old, new, node)
            self.attrs.touch_dir(_parent(old))
            self.attrs.touch_dir(_parent(new))
            self.attrs.persist()

    def _rename_file(self, old: str, new: str, node: Node) -> None:
        existing = self.lookup(new)
        if existing is not None and existing.is_dir:
            raise IsADirectoryError(errno.EISDIR, 'a directory has that name', new)
        src = self._target(old)
        try:
            dst = self._target(new)
        except InvalidKey as err:
            if src.kind == SAMPLE:  # mv copies instead, and its create says why
                raise OSError(errno.EXDEV, f'{new} cannot be a sample ({err})', old) from err
            raise
        handles = self._writing.get(old, [])
        for h in handles:  # an open file renamed: what it holds moves with it
            if h.dirty and not h.detached:
                self.flush(h)
        node = self.lookup(old) or node
        if src.kind == SCRATCH:
            scratch = self._scratch[old]
            if dst.kind == SCRATCH:
                replaced = self._scratch.get(new)
                if replaced is not None:
                    replaced.buffer.close()
                self._scratch[new] = self._scratch.pop(old)
            else:
                self._put(dst, new, scratch.buffer)  # validated here: a refusal keeps the scratch file
                self._scratch.pop(old).buffer.close()
        elif not self._move_sample(src, dst):
            try:
                self._put(dst, new, WriteBuffer(self.read(node, node.size, 0)))
            except (SchemaMismatch, NpyFormatError, InvalidKey) as err:
                if src.kind == SAMPLE and dst.kind == SAMPLE:  # mv copies instead; close() says why
                    raise OSError(errno.EXDEV, f'{new} cannot hold this sample ({err})', old) from err
                raise
            self._remove(old)
        if handles:
            for h in handles:
                h.path, h.target, h.staged, h.before = new, dst, None, None
            self._writing[new] = self._writing.pop(old)
        self._date(new, dst, node.mtime_ns, node.mode)
        self.attrs.forget(old)

    def _move_sample(self, src: Target, dst: Target) -> bool:
        """Move a sample within its column by reference (no bytes read); False if it is no such move."""
        if not (src.kind == dst.kind == SAMPLE and src.column == dst.column):
            return False
        col = self._column_map()[src.column]
        if src.subkey is None:
            assert isinstance(col, Column)
            col.rename(src.key, dst.key)
            return True
        assert isinstance(col, NestedColumn)
        if src.key == dst.key:
            col.rename(src.key, src.subkey, dst.subkey)
            return True
        info = col.info(src.key, src.subkey)
        col.restore(dst.key, dst.subkey, info)
        self._remove_sub(col, src)
        self._pending_samples.discard((dst.column, key_to_name(dst.key)))
        return True

    def _remove_sub(self, col: NestedColumn, target: Target) -> None:
        del col[target.key, target.subkey]
        if target.key not in col:
            self._pending_samples.add((target.column, key_to_name(target.key)))

    def _rename_dir(self, old: str, new: str) -> None:
        src, dst = split_path(old), split_path(new)
        target = self.lookup(new)
        if target is not None and not target.is_dir:
            raise NotADirectoryError(errno.ENOTDIR, 'not a directory', new)
        if target is not None and [n for n, _ in self.list_names(new) or () if n != SCHEMA_FILE]:
            raise OSError(errno.ENOTEMPTY, 'directory not empty', new)
        if len(src) == len(dst) == 1 and META_DIR not in (src[0], dst[0]):
            self._rename_column(src[0], dst[0], target is not None)
        elif (
            len(src) == len(dst) == 2
            and src[0] == dst[0]
            and isinstance(self._column_map().get(src[0]), NestedColumn)
        ):
            self._rename_nested_sample(src[0], src[1], dst[1])
        else:
            raise OSError(errno.EXDEV, 'this directory cannot move there; copy it and delete it', old)
        self.attrs.forget_tree(new.rstrip('/'))
        self.attrs.move_tree(old.rstrip('/'), new.rstrip('/'))

    def _rename_column(self, old: str, new: str, replace: bool) -> None:
        check_name(new, 'column name')
        if replace:
            self.rmdir('/' + new)
        if old in self._pending_columns:
            self._pending_columns.discard(old)
            self._pending_columns.add(new)
        else:
            rename_column(self.co, old, new)
            if old in self._hidden_schemas:
                self._hidden_schemas.discard(old)
                self._hidden_schemas.add(new)
        self._pending_samples = {(new if c == old else c, s) for c, s in self._pending_samples}
        self._columns = None

    def _rename_nested_sample(self, column: str, old: str, new: str) -> None:
        col = self._column_map()[column]
        assert isinstance(col, NestedColumn)
        old_key, new_key = name_to_key(old), name_to_key(new)
        self._pending_samples.discard((column, new))
        if (column, old) in self._pending_samples:
            self._pending_samples.discard((column, old))
            self._pending_samples.add((column, new))
            return
        with col:
            for sub, info in list(col.iter_sub_infos(old_key)):
                col.restore(new_key, sub, info)
            del col[old_key]

    # ---------------------------------------------------------------- directories

    def mkdir(self, path: str) -> None:
        with self.lock:
            parts = split_path(path)
            if self.lookup(path) is not None:
                raise FileExistsError(errno.EEXIST, 'exists already', path)
            if len(parts) == 1 and parts[0] != META_DIR:
                self._pending_columns.add(check_name(parts[0], 'column name'))
            elif len(parts) == 2 and (
                parts[0] in self._pending_columns
                or isinstance(self._column_map().get(parts[0]), NestedColumn)
            ):
                name_to_key(parts[1])
                self._pending_samples.add((parts[0], parts[1]))
            elif len(parts) == 2 and parts[0] in self._column_map():
                raise InvalidKey(f'{path}: column {parts[0]!r} is flat; it holds files, not directories')
            else:
                raise InvalidKey(f'{path}: directories are columns (top level) or samples of a nested column')
            self.attrs.touch_dir(path)
            self.attrs.touch_dir(_parent(path))
            self.attrs.persist()

    def rmdir(self, path: str) -> None:
        with self.lock:
            parts = split_path(path)
            node = self.lookup(path)
            if node is None:
                raise FileNotFoundError(errno.ENOENT, 'no such directory', path)
            if not node.is_dir:
                raise NotADirectoryError(errno.ENOTDIR, 'not a directory', path)
            if [n for n, _ in self.list_names(path) or () if n != SCHEMA_FILE]:
                raise OSError(errno.ENOTEMPTY, 'directory not empty', path)
            if len(parts) == 1 and parts[0] in self._pending_columns:
                self._pending_columns.discard(parts[0])
            elif len(parts) == 1 and parts[0] != META_DIR:
                self.co.columns.delete(parts[0])
                self._hidden_schemas.discard(parts[0])
                self._columns = None
            elif len(parts) == 2 and (parts[0], parts[1]) in self._pending_samples:
                self._pending_samples.discard((parts[0], parts[1]))
            else:
                raise PermissionError(errno.EPERM, 'this directory cannot be removed', path)
            self.attrs.forget_tree(path.rstrip('/'))
            self.attrs.touch_dir(_parent(path))
            self.attrs.persist()


def _parent(path: str) -> str:
    return path.rstrip('/').rpartition('/')[0] or '/'
