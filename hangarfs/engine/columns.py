"""Columns: the mapping-like objects users read and write samples through.

A flat column maps a key to a sample (this module); a nested column maps a key to a *sample* that maps
subkeys to subsamples (``scans['patient1', 'axial']``, ``nested.py``). Both work the same in read and
write checkouts. A column reaches its samples only through its checkout's access object
(``access.py``): a read checkout's access has no write path, so a write through a read checkout
raises ``ReadOnlyError``. Inside ``with column:`` writes are gathered in memory and made durable
together when the block exits (the fast form); outside, every write is durable when the call returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hangarfs.backends import backend_name
from hangarfs.engine.access import ReadAccess
from hangarfs.engine.column_args import new_sample_key, read_key, update_pairs
from hangarfs.engine.column_schemas import backend_choice
from hangarfs.engine.keys import Key, decode_keys, decode_one_key, encode_key
from hangarfs.engine.records import ColumnSchema
from hangarfs.engine.samples import SampleCodec, SampleInfo
from hangarfs.engine.staged_access import StagedAccess
from hangarfs.engine.staging import SET, TOMBSTONE, column_prefix
from hangarfs.errors import (
    ColumnInUse,
    PickleRefused,
    ReadOnlyError,
    SampleNotFound,
    SchemaMismatch,
)

if TYPE_CHECKING:
    from hangarfs.engine.checkout import Checkout

_MISSING = object()


def open_reader_column(repo_path: str, commit: str, name: str) -> _ColumnBase:
    """Column ``name`` of a new read-only checkout of ``commit`` (what an unpickled column is); the
    checkout lives as long as the column does."""
    from hangarfs.engine.checkout import ReaderCheckout
    from hangarfs.engine.store import RepoStore

    return ReaderCheckout(RepoStore(repo_path), commit).columns[name]


class _ColumnBase:
    """What flat and nested columns share: schema properties, context manager, repr."""

    def __init__(self, access: ReadAccess, name: str, schema: ColumnSchema, checkout: Checkout) -> None:
        self._access = access
        self._checkout = checkout
        self._name = name
        self._schema = schema
        self._codec = SampleCodec(name, schema)
        self._prefix = column_prefix(name)
        self._enter_count = 0

    # properties named as in Hangar; like every use of a closed checkout's column, they raise
    # ClosedError (a PermissionError, as in Hangar) once the checkout is closed

    @property
    def _live_schema(self) -> ColumnSchema:
        self._access.check_open()
        return self._schema

    @property
    def column(self) -> str:
        self._access.check_open()
        return self._name

    @property
    def checkout(self) -> Checkout:
        """The checkout this column was opened through (its commit, repository and mode)."""
        self._access.check_open()
        return self._checkout

    name = column

    @property
    def column_type(self) -> str:
        return self._live_schema.kind

    @property
    def column_layout(self) -> str:
        return self._live_schema.layout

    @property
    def contains_subsamples(self) -> bool:
        return self._live_schema.nested

    @property
    def dtype(self) -> np.dtype | type | None:
        """The samples' dtype (None in a heterogeneous column, where each sample has its own)."""
        s = self._live_schema
        if s.kind == 'ndarray':
            return np.dtype(self._live_schema.dtype) if self._live_schema.dtype is not None else None
        return str if self._live_schema.kind == 'str' else bytes

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._live_schema.shape

    @property
    def schema_type(self) -> str:
        return 'variable_shape' if self.variable_shape else 'fixed_shape'

    @property
    def variable_shape(self) -> bool:
        """True when samples may differ in shape: str and bytes values have any length (Hangar's
        ``'variable_shape'`` schema type); array columns say what they were created with."""
        s = self._live_schema
        return s.variable_shape or s.kind != 'ndarray'

    @property
    def backend(self) -> str:
        return self._live_schema.backend

    @property
    def backend_name(self) -> str:
        return backend_name(self._live_schema.backend)

    @property
    def backend_options(self) -> dict[str, Any]:
        return dict(self._live_schema.backend_options)

    @property
    def schema(self) -> ColumnSchema:
        return self._live_schema

    @property
    def iswriteable(self) -> bool:
        self._access.check_open()
        return self._access.writable

    @property
    def contains_remote_references(self) -> bool:
        self._access.check_open()
        return False

    @property
    def remote_reference_keys(self) -> tuple[Key, ...]:
        self._access.check_open()
        return ()

    # pickling: read-only columns travel to other processes (multiprocessing, DataLoader workers)

    def __reduce__(self) -> tuple[Any, tuple[str, str, str]]:
        """A read-only column pickles as (repository path, commit digest, column name): the process
        that unpickles it opens the repository and a read-only checkout of that commit itself, so no
        open environment or file handle crosses. A column of a write checkout refuses (PermissionError,
        as in Hangar): its staged state lives in the one writer process."""
        access = self._access
        access.check_open()
        if access.writable:
            raise PickleRefused(
                f'column {self._name!r} is in a write checkout and cannot be pickled (Method "__getstate__" '
                'cannot be called in a write-enabled checkout, as Hangar says); commit, then pickle the '
                'column of a read-only checkout: repo.checkout(commit=...).columns[name]'
            )
        return open_reader_column, (access.store.path, access.commit, self._name)

    # context manager: the fast form for many writes

    def __enter__(self) -> _ColumnBase:
        access = self._access
        access.check_open()
        if isinstance(access, StagedAccess):
            access.enter_batch()
        self._enter_count += 1
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._enter_count -= 1
        if isinstance(self._access, StagedAccess):
            self._access.exit_batch()

    @property
    def _is_conman(self) -> bool:
        """True inside ``with column:``, ``with co:`` or ``with co.columns:`` (Hangar's name)."""
        self._access.check_open()
        return self._enter_count > 0 or self._access.with_blocks > 0

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, key: Any) -> Any:
        raise NotImplementedError

    def __setitem__(self, key: Any, value: Any) -> None:
        raise NotImplementedError

    def __delitem__(self, key: Any) -> None:
        raise NotImplementedError

    # byte-level access (what the filesystem front end uses)

    def read_bytes(
        self, info: SampleInfo, start: int = 0, stop: int | None = None, *, key: Any = None
    ) -> bytes:
        """Bytes ``[start, stop)`` of a sample's stored form (C-order array data, UTF-8, raw bytes).

        Reads only the stored chunks the range touches, verified; errors name ``key`` when given.
        """
        end = info.nbytes if stop is None else min(stop, info.nbytes)
        if info.inline is not None:
            return info.inline[max(0, start) : max(0, end)]
        return self._access.read_range(
            self._name, key, info.digest, max(0, start), max(0, end), ref=info.ref, codec=self._codec
        )

    def check_array(self, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        """Raise SchemaMismatch unless an array of this dtype and shape could be stored here (for
        checking many files before staging any of them)."""
        if self.column_type != 'ndarray':
            raise SchemaMismatch(self._name, 'a value of type', self.column_type, 'numpy.ndarray')
        self._codec.check_array(dtype, shape)

    # writing helpers

    def _writer(self) -> StagedAccess:
        """The writer's access, or ReadOnlyError: a read checkout's access has no write path."""
        access = self._access
        access.check_open()
        if not isinstance(access, StagedAccess):
            raise ReadOnlyError(
                f'column {self._name!r} is in a read-only checkout; open one with repo.checkout(write=True) '
                'to change it'
            )
        return access

    def change_backend(self, backend: str, backend_options: Mapping[str, Any] | None = None) -> None:
        """Where future writes of this column go (existing samples stay where they are)."""
        writer = self._writer()
        if self._is_conman:
            raise ColumnInUse(
                f'cannot change the backend of column {self._name!r} inside a `with` block (as in Hangar); '
                'change it after the block'
            )
        code, options = backend_choice(backend, backend_options)
        writer.flush()
        new = ColumnSchema(**{**self._schema.__dict__, 'backend': code, 'backend_options': options})
        writer.set_schema(self._name, new)
        self._schema = new
        self._codec = SampleCodec(self._name, new)

    def _describe(self) -> str:
        s = self._schema
        rows = [
            f'Column Name              : {self._name}',
            f'Writeable                : {self.iswriteable}',
            f'Column Type              : {s.kind}',
            f'Column Layout            : {s.layout}',
        ]
        if s.kind == 'ndarray':
            rows += [
                f'Schema Type              : {self.schema_type}',
                f'DType                    : {np.dtype(s.dtype) if s.dtype else "per sample"}',
                f'Shape                    : {s.shape}',
            ]
        options = f' {s.backend_options}' if s.backend_options else ''
        rows += [
            f'Number of Samples        : {len(self)}',
            f'Backend                  : {self.backend_name} ({s.backend}){options}',
        ]
        return '\n'.join(rows)

    def __repr__(self) -> str:
        if self._access.closed:
            return f'<{type(self).__name__} {self._name!r} of {self._access.closed_as}>'
        kind = f'{self._schema.kind} {self._schema.layout}'
        return f'<{type(self).__name__} {self._name!r} ({kind})\n{self._describe()}>'


class Column(_ColumnBase):
    """A flat column: key -> sample."""

    # ------------------------------------------------------------------ lookup

    def _ref(self, key: Any) -> tuple[bytes, bytes | None]:
        kenc = read_key(self._name, key)
        return kenc, self._access.ref(self._name, kenc)

    def __getitem__(self, key: Key) -> Any:
        _, ref = self._ref(key)
        if ref is None:
            raise SampleNotFound(self._name, key)
        return self._access.load(self._name, key, ref, self._codec)

    def get(self, key: Key, default: Any = None) -> Any:
        try:
            _, ref = self._ref(key)
        except SampleNotFound:  # a hashable value that cannot be a key
            return default
        if ref is None:
            return default
        return self._access.load(self._name, key, ref, self._codec)

    def __contains__(self, key: object) -> bool:
        try:
            return self._ref(key)[1] is not None
        except SampleNotFound:
            return False

    def __len__(self) -> int:
        return self._access.count(self._name)

    def info(self, key: Key) -> SampleInfo | None:
        """Size, shape and digest of a sample without reading it (None if absent)."""
        _, ref = self._ref(key)
        return self._codec.info(ref) if ref is not None else None

    def iter_infos(self) -> Iterator[tuple[Key, SampleInfo]]:
        """(key, SampleInfo) for every sample, in key order, without reading any data."""
        info = self._codec.info
        for kenc, ref in self._access.iter_refs(self._name):
            yield decode_one_key(kenc), info(ref)

    def keys(self, local: bool = False) -> Iterator[Key]:
        """Keys in order: int keys ascending, then str keys (read without decoding any sample ref)."""
        for kenc in self._access.scan_keys(self._name):
            yield decode_one_key(kenc)

    @property
    def _samples(self) -> dict[Key, SampleInfo]:
        """Key -> SampleInfo of every sample (Hangar's private view, which code written for Hangar
        inspects): a snapshot, built when asked for."""
        return dict(self.iter_infos())

    def key_blocks(self) -> Iterator[list[Key]]:
        """The keys of ``keys()``, a list at a time: the fast path for listing millions of samples."""
        for encoded in self._access.key_blocks(self._name):
            yield decode_keys(encoded)

    def __iter__(self) -> Iterator[Key]:
        return self.keys()

    def values(self, local: bool = False) -> Iterator[Any]:
        for _, v in self.items():
            yield v

    def items(self, local: bool = False) -> Iterator[tuple[Key, Any]]:
        access = self._access
        for kenc, ref in access.iter_refs(self._name):
            key = decode_one_key(kenc)
            yield key, access.load(self._name, key, ref, self._codec)

    def get_batch(self, keys: Sequence[Key]) -> Any:
        """Many samples at once: a stacked ndarray for fixed-shape array columns, else a list."""
        access = self._access
        s = self._schema
        if s.kind == 'ndarray' and not s.variable_shape and s.dtype is not None:
            return access.read_fixed(self._name, self._codec, keys)
        found = access.refs_many(self._name, [encode_key(k) for k in keys])
        refs: list[bytes] = []
        for k, ref in zip(keys, found):
            if ref is None:
                raise SampleNotFound(self._name, k)
            refs.append(ref)
        return [access.load(self._name, k, r, self._codec) for k, r in zip(keys, refs)]

    def prepare_bulk_reads(self) -> None:
        """Index this fixed-shape column for bulk reads now: a read checkout about to read most of the
        column (a training epoch) then serves every ``get_batch`` from an in-memory index of the commit
        (sorted keys -> stored locations) instead of looking each key up. ``get_batch`` builds the index
        by itself once a checkout has asked for 1/16 of a column of 50,000 samples or more; a write
        checkout (whose staging area changes) never does, and other columns need none."""
        s = self._live_schema
        if s.kind == 'ndarray' and not s.variable_shape and s.dtype is not None:
            self._access.prepare_bulk_reads(self._name, self._codec)

    # ------------------------------------------------------------------ writing

    def __setitem__(self, key: Key, value: Any) -> None:
        self.put(key, value)

    def put(self, key: Key, value: Any, *, copy: bool = True) -> None:
        """``col[key] = value``; with ``copy=False`` an array's memory is read in place (do not change
        it until the call returns: outside a ``with`` block it is stored before that)."""
        writer = self._writer()
        kenc = encode_key(key)
        prepared = self._codec.prepare(value, copy=copy)
        writer.stage(self._name, self._prefix + kenc, SET + prepared.ref, prepared, self._codec.typesize)

    def append(self, value: Any) -> str:
        """Store ``value`` under a generated str key and return the key (Hangar's ``append``); keys
        made this way sort in the order the samples were appended."""
        self._writer()
        key = new_sample_key(self.__contains__)
        self.put(key, value)
        return key

    def __delitem__(self, key: Key) -> None:
        writer = self._writer()
        kenc, ref = self._ref(key)
        if ref is None:
            raise SampleNotFound(self._name, key)
        writer.stage(self._name, self._prefix + kenc, TOMBSTONE, None, 1)

    def rename(self, old: Key, new: Key) -> None:
        """Move a sample to another key (its stored bytes are not read or copied)."""
        writer = self._writer()
        old_enc, ref = self._ref(old)
        if ref is None:
            raise SampleNotFound(self._name, old)
        new_enc = encode_key(new)
        if new_enc == old_enc:
            return
        with self:
            writer.stage(self._name, self._prefix + new_enc, SET + ref, None, 1)
            writer.stage(self._name, self._prefix + old_enc, TOMBSTONE, None, 1)

    def restore(self, key: Key, info: SampleInfo | None) -> None:
        """Put sample ``key`` back as ``info`` (from :meth:`info`) describes it, or remove it when
        ``info`` is None; no data is read or copied (the stored bytes are still where they were)."""
        writer = self._writer()
        kenc, ref = self._ref(key)
        if info is None:
            if ref is not None:
                writer.stage(self._name, self._prefix + kenc, TOMBSTONE, None, 1)
        elif ref != info.ref:
            writer.stage(self._name, self._prefix + kenc, SET + info.ref, None, 1)

    def pop(self, key: Key, default: Any = _MISSING) -> Any:
        self._writer()
        try:
            value = self[key]
        except SampleNotFound:
            if default is _MISSING:
                raise
            return default
        del self[key]
        return value

    def update(
        self, other: Mapping[Key, Any] | Iterable[tuple[Key, Any]] | None = None, **kwargs: Any
    ) -> None:
        """Write many samples (a mapping, (key, value) pairs, or keywords, as ``dict.update`` takes);
        all of them are durable together when the call returns, and one bad item stages none."""
        writer = self._writer()
        items = update_pairs(self._name, other, kwargs)
        # validate every key and value first, so that one bad item stages none of them (as Hangar does)
        prepared = [(self._prefix + encode_key(k), self._codec.prepare(v)) for k, v in items]
        typesize = self._codec.typesize
        with self:
            for skey, p in prepared:
                writer.stage(self._name, skey, SET + p.ref, p, typesize)

    def update_batch(self, keys: Sequence[Key], values: Any) -> None:
        """The bulk write path: ``values`` is a stacked ndarray (or a sequence) aligned with ``keys``."""
        writer = self._writer()
        if len(keys) != len(values):
            raise ValueError(f'update_batch got {len(keys)} keys but {len(values)} values')
        encoded = [encode_key(k) for k in keys]
        if (
            isinstance(values, np.ndarray)
            and self._schema.kind == 'ndarray'
            and not self._schema.variable_shape
        ):
            prepared = self._codec.prepare_stack(values) if len(keys) else []
        else:
            prepared = [self._codec.prepare(v) for v in values]
        prefix = self._prefix
        entries = [(prefix + kenc, SET + p.ref) for kenc, p in zip(encoded, prepared)]
        with self:
            writer.stage_many(self._name, entries, prepared, self._codec.typesize)
