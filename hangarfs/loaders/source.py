"""What a dataset reads, and the per-process reader that reads it.

A dataset is defined by a :class:`DatasetSource`: the repository's path, a commit digest, column names,
the keys in index order and the names of the fields it yields. That small frozen value is all that a
dataset pickles (to a spawned DataLoader worker, say): no data, no open handle. Each process that reads
(the main one, every worker) opens its own read-only checkout of that commit on first use, so LMDB
environments and data files never cross a fork or a pickle, and the commit is pinned: a branch that
moves while a loader runs changes nothing it reads.
"""

from __future__ import annotations

import collections
import functools
import itertools
import keyword
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from hangarfs.engine.bulk import INDEX_SHARE
from hangarfs.engine.columns import Column
from hangarfs.engine.keys import Key
from hangarfs.engine.nested import NestedColumn
from hangarfs.errors import ClosedError, ColumnKeysMismatch, DatasetError

# ============================================================================ keys


class KeyList(Sequence[Key]):
    """A dataset's keys in index order, stored compactly: a ``range`` of int keys when they are
    consecutive (the common 0..N-1), else one numpy array (uint64 for int keys, object otherwise)."""

    __slots__ = ('_keys',)

    def __init__(self, keys: range | np.ndarray) -> None:
        self._keys = keys

    @classmethod
    def from_keys(cls, keys: Sequence[Key]) -> KeyList:
        n = len(keys)
        if n and all(type(k) is int for k in keys):
            arr = np.fromiter(keys, dtype=np.uint64, count=n)
            if bool(np.all(np.diff(arr) == 1)):
                first = int(arr[0])
                return cls(range(first, first + n))
            return cls(arr)
        arr = np.empty(n, dtype=object)
        arr[:] = list(keys)
        return cls(arr)

    def __len__(self) -> int:
        return len(self._keys)

    @overload
    def __getitem__(self, index: int) -> Key: ...
    @overload
    def __getitem__(self, index: slice) -> KeyList: ...
    def __getitem__(self, index: int | slice) -> Key | KeyList:
        if isinstance(index, slice):
            return KeyList(self._keys[index])
        key = self._keys[index]
        return int(key) if isinstance(key, (int, np.integer)) else key

    def __iter__(self) -> Iterator[Key]:
        if isinstance(self._keys, range):
            return iter(self._keys)
        return iter(self._keys.tolist())

    def take(self, indices: np.ndarray) -> list[Key]:
        """The keys at ``indices`` (valid, non-negative positions), as Python ints and strs."""
        keys = self._keys
        if isinstance(keys, range):
            if max(abs(keys.start), abs(keys.stop)) < 1 << 62:
                shifted: list[Key] = (indices * keys.step + keys.start).tolist()
                return shifted
            return [keys[i] for i in indices.tolist()]
        picked: list[Key] = keys[indices].tolist()
        return picked

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyList):
            return NotImplemented
        a, b = self._keys, other._keys
        if isinstance(a, range) and isinstance(b, range):
            return a == b
        return len(a) == len(b) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if isinstance(self._keys, range):
            return f'KeyList({self._keys!r})'
        return f'KeyList({len(self):,} keys: {self[0]!r} ... {self[-1]!r})'


def normalize_key(key: Any) -> Key:
    """An int (numpy ints included) or a str; anything else is refused."""
    if isinstance(key, str):
        return key
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return int(key)
    raise TypeError(f'expected sample keys of type int or str, got {type(key).__name__} {key!r} instead')


def column_keys(column: Column) -> list[Key]:
    """Every key of a column in its order (int keys ascending, then str keys)."""
    return list(itertools.chain.from_iterable(column.key_blocks()))


def common_keys(columns: Column | Sequence[Column]) -> list[Key]:
    """The keys that every column holds, in the first column's order: pass as ``keys=`` to train on
    the samples the columns share when their key sets differ."""
    cols = _as_column_list(columns)
    keys = column_keys(cols[0])
    for col in cols[1:]:
        present = set(column_keys(col))
        keys = [k for k in keys if k in present]
    return keys


# ============================================================================ fields


@dataclass(frozen=True)
class FieldSpec:
    """One field of what a dataset yields: which column, and what its values look like."""

    name: str
    column: str
    kind: str  # 'ndarray', 'str' or 'bytes'
    dtype: str | None  # numpy dtype string of an ndarray column
    shape: tuple[int, ...] | None  # the shape (the maximum shape if variable_shape)
    variable_shape: bool

    @property
    def stackable(self) -> bool:
        """Whether a batch of this field is one stacked array (fixed-shape ndarray columns)."""
        return self.kind == 'ndarray' and not self.variable_shape

    def describe(self) -> str:
        if self.kind != 'ndarray':
            return f'{self.name}<-{self.column} {self.kind}'
        shape = f'max {self.shape}' if self.variable_shape else str(self.shape)
        return f'{self.name}<-{self.column} {np.dtype(self.dtype).name} {shape}'


def _rebuild_batch_tuple(field_names: tuple[str, ...], values: tuple[Any, ...]) -> Any:
    return batch_tuple_type(field_names)(*values)


# A memo, not state: equal field names give the same class, in this process and (through
# ``_rebuild_batch_tuple``) in every process a tuple is unpickled in.
@functools.lru_cache(maxsize=256)
def batch_tuple_type(field_names: tuple[str, ...]) -> type:
    """The namedtuple class ``BatchTuple(field, ...)`` that samples and batches come in.

    Its instances pickle by field names, so they cross process boundaries (DataLoader workers send
    batches to the main process) although the class is made at run time.
    """
    base = collections.namedtuple('BatchTuple', field_names)  # type: ignore[misc]

    def __reduce__(self: Any) -> tuple[Any, ...]:
        return (_rebuild_batch_tuple, (self._fields, tuple(self)))

    return type('BatchTuple', (base,), {'__slots__': (), '__reduce__': __reduce__})


def _check_field_names(field_names: Any, columns: Sequence[str]) -> tuple[str, ...]:
    if field_names is None:
        names = tuple(columns)
        source = 'column names (pass field_names=... to choose others)'
    else:
        if isinstance(field_names, str) or not isinstance(field_names, (list, tuple)):
            raise TypeError(
                f'field_names must be a list or tuple of str, one per column, got {field_names!r} instead'
            )
        names = tuple(field_names)
        source = 'field_names'
        if len(names) != len(columns):
            raise DatasetError(
                f'expected {len(columns)} field_names (one per column: {", ".join(columns)}), '
                f'got {len(names)} instead'
            )
    for name in names:
        if (
            not isinstance(name, str)
            or not name.isidentifier()
            or keyword.iskeyword(name)
            or name.startswith('_')
        ):
            raise DatasetError(
                f'{name!r} cannot name a field: the {source} must be Python identifiers not starting '
                "with '_' (they become namedtuple fields, batch.image), e.g. field_names=('image', 'label')"
            )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DatasetError(f'field names must be unique, got {", ".join(dup)} more than once in {source}')
    return names


# ============================================================================ the source


@dataclass(frozen=True)
class DatasetSource:
    """Everything that defines a dataset, and all that it pickles."""

    repo_path: str
    commit: str
    branch: str | None  # the branch the checkout was on when the dataset was made (for messages)
    fields: tuple[FieldSpec, ...]
    keys: KeyList

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(f.column for f in self.fields)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def describe(self) -> str:
        where = f' (branch {self.branch!r} when made)' if self.branch else ''
        fields = ', '.join(f.describe() for f in self.fields)
        return f'{self.repo_path} at commit {self.commit[:12]}{where}: {len(self.keys):,} samples; {fields}'


def _as_column_list(columns: Any) -> list[Column]:
    if isinstance(columns, (Column, NestedColumn)):
        columns = [columns]
    elif isinstance(columns, (str, bytes)) or not isinstance(columns, Iterable):
        raise TypeError(
            "expected a column or a list of columns (co['images'], co.columns['labels']), "
            f'got {type(columns).__name__} {columns!r} instead'
        )
    cols = list(columns)
    if not cols:
        raise DatasetError("a dataset needs at least one column, e.g. [co['images'], co['labels']]")
    for col in cols:
        if isinstance(col, NestedColumn):
            raise DatasetError(
                f'column {col.column!r} holds subsamples (a nested column), which dataloaders do not read; '
                'use flat columns (one array, str or bytes per key)'
            )
        if not isinstance(col, Column):
            hint = f' (co[{col!r}] is the column of that name)' if isinstance(col, str) else ''
            raise TypeError(f'expected hangarfs columns, got {type(col).__name__} {col!r} instead{hint}')
    return cols


def _checkout_of(col: Column) -> tuple[str, str, str | None]:
    """(repository path, commit, branch) of a column's checkout, which must be open and read-only."""
    try:
        co = col.checkout
        writeable = co.iswriteable
        commit = co.commit_hash
    except ClosedError as err:  # a closed checkout's columns refuse every use, even their name
        raise ClosedError(
            f'column {col._name!r} belongs to a closed checkout; open a read checkout '
            '(repo.checkout(commit=...)) and make the dataset from its columns'
        ) from err
    if writeable:
        raise DatasetError(
            f'column {col.column!r} belongs to a writer checkout: a dataset reads one commit, the same in '
            'every worker process, and a writer stages changes no other process can see. Commit, close '
            'the writer, and make the dataset from a read checkout: repo.checkout(commit=...) or '
            'repo.checkout(branch=...)'
        )
    return co.repo_path, commit, co.branch_name


def resolve_source(
    columns: Any, keys: Iterable[Any] | None, index_range: slice | None, field_names: Any
) -> DatasetSource:
    """Check what a ``make_*_dataset`` call was given and fix the keys it will read.

    ``keys=None`` reads every key, in column order (int keys ascending, then str keys), and requires
    all columns to hold the same keys; otherwise :class:`ColumnKeysMismatch` names the column and the
    keys it lacks (``common_keys(columns)`` gives the shared ones, to pass as ``keys=``). Given ``keys``
    are read in the order given (repeats allowed) and must exist in every column. ``index_range``
    then slices that list.
    """
    cols = _as_column_list(columns)
    where = [_checkout_of(col) for col in cols]
    repo_path, commit, branch = where[0]
    for col, (path, c, _) in zip(cols[1:], where[1:]):
        if (path, c) != (repo_path, commit):
            raise DatasetError(
                f'column {col.column!r} is from {path} at commit {c[:12]}, but column {cols[0].column!r} is '
                f'from {repo_path} at commit {commit[:12]}: the columns of a dataset come from one commit'
            )
    if index_range is not None and not isinstance(index_range, slice):
        raise TypeError(
            f'index_range must be a slice (slice(0, 50_000)), got {type(index_range).__name__} instead'
        )
    names = _check_field_names(field_names, [c.column for c in cols])
    fields = tuple(
        FieldSpec(
            name,
            col.column,
            col.schema.kind,
            col.schema.dtype,
            tuple(col.schema.shape) if col.schema.shape is not None else None,
            col.schema.variable_shape,
        )
        for name, col in zip(names, cols)
    )
    selected = _select_keys(cols, keys)
    if index_range is not None:
        selected = selected[index_range]
    if not selected:
        what = 'the columns hold no samples' if keys is None else 'keys= is empty'
        rng = f' once index_range={index_range} is applied' if index_range is not None else ''
        raise DatasetError(f'the dataset would have no samples: {what}{rng}')
    return DatasetSource(repo_path, commit, branch, fields, KeyList.from_keys(selected))


def _select_keys(cols: list[Column], keys: Iterable[Any] | None) -> list[Key]:
    if keys is None:
        first = column_keys(cols[0])
        for col in cols[1:]:
            other = column_keys(col)
            if other == first:
                continue
            present = set(other)
            lacking = [k for k in first if k not in present]
            if lacking:
                culprit, what = col.column, f'of column {cols[0].column!r}'
            else:  # the other column holds keys the first lacks
                present = set(first)
                lacking = [k for k in other if k not in present]
                culprit, what = cols[0].column, f'of column {col.column!r}'
            raise ColumnKeysMismatch(
                culprit,
                lacking,
                len(first) if culprit != cols[0].column else len(other),
                what,
                'with keys=None every column must hold the same keys: pass keys=common_keys(columns) '
                '(from hangarfs.loaders) to read only the keys all columns share, or keys=[...] to choose',
            )
        return first
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Iterable):
        raise TypeError(
            f'keys must be a list (or other iterable) of int or str sample keys, got {keys!r} instead'
        )
    wanted = [normalize_key(k) for k in keys]
    for col in cols:
        present = set(column_keys(col))
        lacking = [k for k in wanted if k not in present]
        if lacking:
            raise ColumnKeysMismatch(
                col.column,
                list(dict.fromkeys(lacking)),
                len(set(wanted)),
                'asked for in keys=',
                'every key must be in every column of the dataset',
            )
    return wanted


# ============================================================================ reading


def positions(indices: Any, n: int) -> np.ndarray:
    """Dataset indices as valid non-negative int64 positions (negative ones count from the end)."""
    idx = np.asarray(indices)
    if idx.dtype.kind not in 'iu':
        if idx.size == 0:
            return np.zeros(0, dtype=np.int64)
        raise TypeError(f'dataset indices must be ints, got {idx.dtype} values')
    idx = idx.astype(np.int64, copy=False).reshape(-1)
    if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):
        bad = idx[(idx < -n) | (idx >= n)][0]
        raise IndexError(f'dataset index {int(bad)} is out of range for a dataset of {n:,} samples')
    return np.where(idx < 0, idx + n, idx)


class SourceReader:
    """Reads a source's samples through this process's own read-only checkout of its commit.

    The checkout is opened on first use in each process (keyed by process id, so a DataLoader worker
    forked from a process that had one opens its own and leaves the inherited one untouched).
    Pickles as its source alone.
    """

    def __init__(self, source: DatasetSource) -> None:
        self.source = source
        self._opened: dict[int, tuple[Any, list[Column]]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {'source': self.source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.source = state['source']
        self._opened = {}

    def columns(self) -> list[Column]:
        pid = os.getpid()
        opened = self._opened.get(pid)
        if opened is None:
            from hangarfs.engine.repository import Repository

            src = self.source
            co = Repository(src.repo_path).checkout(commit=src.commit)
            opened = (co, [co.columns[name] for name in src.column_names])
            for col in opened[1]:
                if len(src.keys) * INDEX_SHARE >= len(col):  # an epoch reads much of the column:
                    col.prepare_bulk_reads()  # index it now (see engine/bulk.py), not after 1/16 of it
            self._opened[pid] = opened
        return opened[1]

    def read_batch(self, indices: Any) -> list[Any]:
        """One value per field: a stacked array (fixed-shape columns) or a list, in ``indices`` order."""
        keys = self.source.keys.take(positions(indices, len(self.source.keys)))
        return [col.get_batch(keys) for col in self.columns()]

    def read_sample(self, index: int) -> list[Any]:
        n = len(self.source.keys)
        if not -n <= index < n:
            raise IndexError(f'dataset index {index} is out of range for a dataset of {n:,} samples')
        key = self.source.keys[index]
        return [col[key] for col in self.columns()]

    def close(self) -> None:
        """Close this process's checkout (the next read opens it again)."""
        opened = self._opened.pop(os.getpid(), None)
        if opened is not None:
            opened[0].close()
