"""Columns: the mapping-like objects users read and write samples through.

A flat column maps a key to a sample; a nested column maps a key to a *sample* that maps subkeys to
subsamples (``scans['patient1', 'axial']``). Both work the same in read and write checkouts, and a
write through a read checkout raises ``ReadOnlyError``. Inside ``with column:`` writes are gathered in
memory and made durable together when the block exits (the fast form); outside, every write is
durable when the call returns.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hangarfs.backends import backend_code, backend_name
from hangarfs.engine.keys import Key, decode_key, decode_keys, decode_one_key, encode_key
from hangarfs.engine.records import EMPTY_ROOT, ColumnSchema
from hangarfs.engine.samples import Prepared, SampleCodec, SampleInfo
from hangarfs.engine.staging import SET, TOMBSTONE, column_prefix
from hangarfs.engine.tree import tree_get, tree_items, tree_scan_key_blocks, tree_scan_keys
from hangarfs.errors import CorruptData, ReadOnlyError, SampleNotFound, SampleReadError, SchemaMismatch

if TYPE_CHECKING:
    from hangarfs.engine.checkout import Checkout

_MISSING = object()


def _merge_sorted(
    base: Iterator[tuple[bytes, bytes]], overlay: Iterator[tuple[bytes, bytes]]
) -> Iterator[tuple[bytes, bytes]]:
    """Merge base (key, ref) pairs with overlay (key, SET+ref | TOMBSTONE) pairs, both sorted."""
    b = next(base, None)
    o = next(overlay, None)
    while b is not None or o is not None:
        if o is None or (b is not None and b[0] < o[0]):
            assert b is not None
            yield b
            b = next(base, None)
            continue
        if b is not None and b[0] == o[0]:
            b = next(base, None)
        if o[1][:1] == SET:
            yield o[0], o[1][1:]
        o = next(overlay, None)


class _ColumnBase:
    """What flat and nested columns share: schema properties, context manager, repr."""

    def __init__(self, checkout: Checkout, name: str, schema: ColumnSchema) -> None:
        self._co = checkout
        self._name = name
        self._schema = schema
        self._codec = SampleCodec(name, schema)
        self._prefix = column_prefix(name)

    # properties named as in Hangar

    @property
    def column(self) -> str:
        return self._name

    name = column

    @property
    def column_type(self) -> str:
        return self._schema.kind

    @property
    def column_layout(self) -> str:
        return self._schema.layout

    @property
    def contains_subsamples(self) -> bool:
        return self._schema.nested

    @property
    def dtype(self) -> np.dtype | type | None:
        """The samples' dtype (None in a heterogeneous column, where each sample has its own)."""
        if self._schema.kind == 'ndarray':
            return np.dtype(self._schema.dtype) if self._schema.dtype is not None else None
        return str if self._schema.kind == 'str' else bytes

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._schema.shape

    @property
    def schema_type(self) -> str:
        return 'variable_shape' if self._schema.variable_shape else 'fixed_shape'

    @property
    def variable_shape(self) -> bool:
        return self._schema.variable_shape

    @property
    def backend(self) -> str:
        return self._schema.backend

    @property
    def backend_name(self) -> str:
        return backend_name(self._schema.backend)

    @property
    def backend_options(self) -> dict[str, Any]:
        return dict(self._schema.backend_options)

    @property
    def schema(self) -> ColumnSchema:
        return self._schema

    @property
    def iswriteable(self) -> bool:
        return self._co._writable

    @property
    def contains_remote_references(self) -> bool:
        return False

    @property
    def remote_reference_keys(self) -> tuple[Key, ...]:
        return ()

    # context manager: the fast form for many writes

    def __enter__(self) -> _ColumnBase:
        self._co._check_open()
        self._co._enter_batch()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._co._exit_batch()

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
        return self._co._read_range(self._name, key, info.digest, max(0, start), max(0, end), info.ref)

    def check_array(self, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        """Raise SchemaMismatch unless an array of this dtype and shape could be stored here (for
        checking many files before staging any of them)."""
        if self.column_type != 'ndarray':
            raise SchemaMismatch(self._name, 'a value of type', self.column_type, 'numpy.ndarray')
        self._codec.check_array(dtype, shape)

    # writing helpers

    def _check_writable(self) -> None:
        self._co._check_open()
        if not self._co._writable:
            raise ReadOnlyError(
                f'column {self._name!r} is in a read-only checkout; open one with repo.checkout(write=True) '
                'to change it'
            )

    def change_backend(self, backend: str, backend_options: Mapping[str, Any] | None = None) -> None:
        """Where future writes of this column go (existing samples stay where they are)."""
        self._check_writable()
        from hangarfs.backends import BACKEND_CLASSES

        code = backend_code(backend)
        options = BACKEND_CLASSES[code].normalize_options(backend_options)
        self._co._flush_batch()
        new = ColumnSchema(**{**self._schema.__dict__, 'backend': code, 'backend_options': options})
        self._co._set_schema(self._name, new)
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
        if self._co._closed:
            return f'<{type(self).__name__} {self._name!r} of a closed checkout>'
        kind = f'{self._schema.kind} {self._schema.layout}'
        return f'<{type(self).__name__} {self._name!r} ({kind})\n{self._describe()}>'


class Column(_ColumnBase):
    """A flat column: key -> sample."""

    # ------------------------------------------------------------------ lookup

    def _ref(self, key: Any) -> tuple[bytes, bytes | None]:
        kenc = encode_key(key)
        co = self._co
        co._check_open()
        if co._writable:
            staged = co._staged(self._prefix + kenc)
            if staged is not None:
                return kenc, (staged[1:] if staged[:1] == SET else None)
        return kenc, tree_get(co._store.nodes, co._root(self._name), kenc)

    def __getitem__(self, key: Key) -> Any:
        _, ref = self._ref(key)
        if ref is None:
            raise SampleNotFound(self._name, key)
        return self._co._load(self._name, key, ref, self._codec)

    def get(self, key: Key, default: Any = None) -> Any:
        _, ref = self._ref(key)
        if ref is None:
            return default
        return self._co._load(self._name, key, ref, self._codec)

    def __contains__(self, key: object) -> bool:
        try:
            return self._ref(key)[1] is not None
        except ValueError:
            return False

    def __len__(self) -> int:
        return self._co._count(self._name)

    def _iter_refs(self) -> Iterator[tuple[bytes, bytes]]:
        co = self._co
        co._check_open()
        base = tree_items(co._store.nodes, co._root(self._name))
        if not co._writable:
            return base
        co._flush_batch()
        return _merge_sorted(base, co._staging.iter_prefix(self._prefix))

    def info(self, key: Key) -> SampleInfo | None:
        """Size, shape and digest of a sample without reading it (None if absent)."""
        _, ref = self._ref(key)
        return self._codec.info(ref) if ref is not None else None

    def iter_infos(self) -> Iterator[tuple[Key, SampleInfo]]:
        """(key, SampleInfo) for every sample, in key order, without reading any data."""
        info = self._codec.info
        for kenc, ref in self._iter_refs():
            yield decode_one_key(kenc), info(ref)

    def keys(self, local: bool = False) -> Iterator[Key]:
        """Keys in order: int keys ascending, then str keys (read without decoding any sample ref)."""
        co = self._co
        co._check_open()
        base = tree_scan_keys(co._store.nodes, co._root(self._name))
        if co._writable:
            co._flush_batch()
            pairs = _merge_sorted(((k, b'') for k in base), co._staging.iter_prefix(self._prefix))
            base = (k for k, _ in pairs)
        for kenc in base:
            yield decode_one_key(kenc)

    def key_blocks(self) -> Iterator[list[Key]]:
        """The keys of ``keys()``, a list at a time: the fast path for listing millions of samples."""
        co = self._co
        co._check_open()
        if co._writable:  # staged changes merged in, key by key
            keys = self.keys()
            while block := list(itertools.islice(keys, 1024)):
                yield block
            return
        for encoded in tree_scan_key_blocks(co._store.nodes, co._root(self._name)):
            yield decode_keys(encoded)

    def __iter__(self) -> Iterator[Key]:
        return self.keys()

    def values(self, local: bool = False) -> Iterator[Any]:
        for _, v in self.items():
            yield v

    def items(self, local: bool = False) -> Iterator[tuple[Key, Any]]:
        for kenc, ref in self._iter_refs():
            key = decode_one_key(kenc)
            yield key, self._co._load(self._name, key, ref, self._codec)

    def get_batch(self, keys: Sequence[Key]) -> Any:
        """Many samples at once: a stacked ndarray for fixed-shape array columns, else a list."""
        refs = self._co._refs_many(self._name, [encode_key(k) for k in keys])
        for k, ref in zip(keys, refs):
            if ref is None:
                raise SampleNotFound(self._name, k)
        s = self._schema
        if s.kind == 'ndarray' and not s.variable_shape:
            assert s.shape is not None
            if self._codec.inline:
                datas: list[Any] = list(refs)
            else:
                datas = self._co._load_many(self._name, keys, refs)  # type: ignore[arg-type]
            size = self._codec.fixed_nbytes
            for key, data in zip(keys, datas):
                if len(data) != size:
                    raise SampleReadError(
                        self._name, key, CorruptData(f'stored value holds {len(data)} bytes, expected {size}')
                    )
            joined = bytearray().join(datas)  # one copy, and a writable array over it
            return np.frombuffer(joined, dtype=np.dtype(s.dtype)).reshape(len(keys), *s.shape)
        return [self._co._load(self._name, k, r, self._codec) for k, r in zip(keys, refs)]  # type: ignore[arg-type]

    # ------------------------------------------------------------------ writing

    def __setitem__(self, key: Key, value: Any) -> None:
        self.put(key, value)

    def put(self, key: Key, value: Any, *, copy: bool = True) -> None:
        """``col[key] = value``; with ``copy=False`` an array's memory is read in place (do not change
        it until the call returns: outside a ``with`` block it is stored before that)."""
        self._check_writable()
        kenc = encode_key(key)
        prepared = self._codec.prepare(value, copy=copy)
        self._co._stage(self._name, self._prefix + kenc, SET + prepared.ref, prepared, self._codec.typesize)

    def __delitem__(self, key: Key) -> None:
        self._check_writable()
        kenc, ref = self._ref(key)
        if ref is None:
            raise SampleNotFound(self._name, key)
        self._co._stage(self._name, self._prefix + kenc, TOMBSTONE, None, 1)

    def rename(self, old: Key, new: Key) -> None:
        """Move a sample to another key (its stored bytes are not read or copied)."""
        self._check_writable()
        old_enc, ref = self._ref(old)
        if ref is None:
            raise SampleNotFound(self._name, old)
        new_enc = encode_key(new)
        if new_enc == old_enc:
            return
        with self:
            self._co._stage(self._name, self._prefix + new_enc, SET + ref, None, 1)
            self._co._stage(self._name, self._prefix + old_enc, TOMBSTONE, None, 1)

    def restore(self, key: Key, info: SampleInfo | None) -> None:
        """Put sample ``key`` back as ``info`` (from :meth:`info`) describes it, or remove it when
        ``info`` is None; no data is read or copied (the stored bytes are still where they were)."""
        self._check_writable()
        kenc, ref = self._ref(key)
        if info is None:
            if ref is not None:
                self._co._stage(self._name, self._prefix + kenc, TOMBSTONE, None, 1)
        elif ref != info.ref:
            self._co._stage(self._name, self._prefix + kenc, SET + info.ref, None, 1)

    def pop(self, key: Key, default: Any = _MISSING) -> Any:
        self._check_writable()
        try:
            value = self[key]
        except SampleNotFound:
            if default is _MISSING:
                raise
            return default
        del self[key]
        return value

    def update(self, other: Mapping[Key, Any] | Iterable[tuple[Key, Any]] = (), **kwargs: Any) -> None:
        """Write many samples; all of them are durable together when the call returns."""
        self._check_writable()
        items = list(other.items()) if isinstance(other, Mapping) else list(other)
        items += list(kwargs.items())
        # validate every key and value first, so that one bad item stages none of them (as Hangar does)
        prepared = [(self._prefix + encode_key(k), self._codec.prepare(v)) for k, v in items]
        typesize = self._codec.typesize
        with self:
            for skey, p in prepared:
                self._co._stage(self._name, skey, SET + p.ref, p, typesize)

    def update_batch(self, keys: Sequence[Key], values: Any) -> None:
        """The bulk write path: ``values`` is a stacked ndarray (or a sequence) aligned with ``keys``."""
        self._check_writable()
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
            self._co._stage_many(self._name, entries, prepared, self._codec.typesize)


class NestedSample:
    """One sample of a nested column: subkey -> subsample."""

    def __init__(self, column: NestedColumn, key: Key) -> None:
        self._column = column
        self._key = key

    @property
    def sample(self) -> Key:
        return self._key

    def __getitem__(self, subkey: Key) -> Any:
        return self._column._get_sub(self._key, subkey)

    def get(self, subkey: Key, default: Any = None) -> Any:
        try:
            return self[subkey]
        except SampleNotFound:
            return default

    def __setitem__(self, subkey: Key, value: Any) -> None:
        self._column[self._key, subkey] = value

    def __delitem__(self, subkey: Key) -> None:
        del self._column[self._key, subkey]

    def __contains__(self, subkey: object) -> bool:
        try:
            self._column._get_sub(self._key, subkey)  # type: ignore[arg-type]
            return True
        except (SampleNotFound, ValueError):
            return False

    def keys(self) -> Iterator[Key]:
        for sub, _ in self._column._sub_refs(self._key):
            yield sub

    def __iter__(self) -> Iterator[Key]:
        return self.keys()

    def items(self) -> Iterator[tuple[Key, Any]]:
        col = self._column
        for sub, ref in col._sub_refs(self._key):
            yield sub, col._co._load(col._name, (self._key, sub), ref, col._codec)

    def values(self) -> Iterator[Any]:
        for _, v in self.items():
            yield v

    def __len__(self) -> int:
        return sum(1 for _ in self._column._sub_refs(self._key))

    def update(self, other: Mapping[Key, Any]) -> None:
        self._column[self._key] = dict(other)

    def __repr__(self) -> str:
        return f'<NestedSample {self._key!r} of column {self._column._name!r}: {len(self)} subsamples>'


class NestedColumn(_ColumnBase):
    """A nested column: key -> {subkey -> subsample}. ``col[key]`` is a :class:`NestedSample`."""

    # ------------------------------------------------------------------ reading

    def _outer(self, kenc: bytes) -> tuple[bool, bytes]:
        """(sample tombstoned in staging, base inner root)."""
        co = self._co
        co._check_open()
        dead = False
        if co._writable:
            staged = co._staged(self._prefix + kenc)
            dead = staged is not None and staged[:1] == TOMBSTONE
        if dead:
            return True, EMPTY_ROOT
        val = tree_get(co._store.nodes, co._root(self._name), kenc)
        return False, (val[:32] if val is not None else EMPTY_ROOT)

    def _sub_refs_enc(self, kenc: bytes) -> Iterator[tuple[bytes, bytes]]:
        co = self._co
        _, inner = self._outer(kenc)
        base = tree_items(co._store.nodes, inner)
        if not co._writable:
            return base
        co._flush_batch()
        # iter_prefix yields the rest after column prefix + key: the subkey, or b'' for the sample itself
        overlay = ((k, v) for k, v in co._staging.iter_prefix(self._prefix + kenc) if k)
        return _merge_sorted(base, overlay)

    def _sub_refs(self, key: Key) -> Iterator[tuple[Key, bytes]]:
        for senc, ref in self._sub_refs_enc(encode_key(key)):
            yield decode_one_key(senc), ref

    def _sub_ref(self, key: Key, subkey: Key) -> bytes | None:
        kenc, senc = encode_key(key), encode_key(subkey)
        co = self._co
        if co._writable:
            staged = co._staged(self._prefix + kenc + senc)
            if staged is not None:
                return staged[1:] if staged[:1] == SET else None
        dead, inner = self._outer(kenc)
        return None if dead else tree_get(co._store.nodes, inner, senc)

    def _get_sub(self, key: Key, subkey: Key) -> Any:
        ref = self._sub_ref(key, subkey)
        if ref is None:
            raise SampleNotFound(self._name, (key, subkey))
        return self._co._load(self._name, (key, subkey), ref, self._codec)

    def info(self, key: Key, subkey: Key) -> SampleInfo | None:
        """Size, shape and digest of one subsample without reading it (None if absent)."""
        ref = self._sub_ref(key, subkey)
        return self._codec.info(ref) if ref is not None else None

    def iter_sub_infos(self, key: Key) -> Iterator[tuple[Key, SampleInfo]]:
        """(subkey, SampleInfo) of every subsample of sample ``key``, in subkey order."""
        for sub, ref in self._sub_refs(key):
            yield sub, self._codec.info(ref)

    def _exists(self, key: Key) -> bool:
        return next(iter(self._sub_refs_enc(encode_key(key))), None) is not None

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):
            if len(key) != 2:
                raise KeyError(
                    f'nested column {self._name!r} takes col[key] or col[key, subkey], got {key!r}'
                )
            return self._get_sub(key[0], key[1])
        if not self._exists(key):
            raise SampleNotFound(self._name, key)
        return NestedSample(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except SampleNotFound:
            return default

    def __contains__(self, key: object) -> bool:
        try:
            if isinstance(key, tuple):
                return self._sub_ref(key[0], key[1]) is not None
            return self._exists(key)  # type: ignore[arg-type]
        except ValueError:
            return False

    def _iter_keys_enc(self) -> Iterator[bytes]:
        co = self._co
        co._check_open()
        base = (k for k, _ in tree_items(co._store.nodes, co._root(self._name)))
        if not co._writable:
            yield from base
            return
        co._flush_batch()
        staged_keys = []
        last = None
        for rest, _ in co._staging.iter_prefix(self._prefix):
            _, end = decode_key(rest)
            k = rest[:end]
            if k != last:
                staged_keys.append(k)
                last = k
        staged = iter(staged_keys)
        b, s = next(base, None), next(staged, None)
        while b is not None or s is not None:
            if s is None or (b is not None and b < s):
                assert b is not None
                yield b
                b = next(base, None)
            else:
                if b == s:
                    b = next(base, None)
                if next(iter(self._sub_refs_enc(s)), None) is not None:
                    yield s
                s = next(staged, None)

    def keys(self, local: bool = False) -> Iterator[Key]:
        for kenc in self._iter_keys_enc():
            yield decode_one_key(kenc)

    def __iter__(self) -> Iterator[Key]:
        return self.keys()

    def values(self, local: bool = False) -> Iterator[NestedSample]:
        for k in self.keys():
            yield NestedSample(self, k)

    def items(self, local: bool = False) -> Iterator[tuple[Key, NestedSample]]:
        for k in self.keys():
            yield k, NestedSample(self, k)

    def __len__(self) -> int:
        co = self._co
        if not co._writable or not co._staging_has_column(self._name):
            return co._count(self._name)
        return sum(1 for _ in self._iter_keys_enc())

    @property
    def num_subsamples(self) -> int:
        return sum(sum(1 for _ in self._sub_refs_enc(k)) for k in self._iter_keys_enc())

    # ------------------------------------------------------------------ writing

    def __setitem__(self, key: Any, value: Any) -> None:
        self._check_writable()
        if isinstance(key, tuple):
            if len(key) != 2:
                raise KeyError(f'nested column {self._name!r} takes col[key, subkey], got {key!r}')
            self.put(key[0], key[1], value)
            return
        self._stage_prepared(self._prepare_sample(key, value))

    def _prepare_sample(self, key: Key, value: Any) -> list[tuple[bytes, Prepared]]:
        """Validate a whole sample (a dict of subkey -> value); return (stage key, prepared) pairs."""
        if not isinstance(value, Mapping):
            raise TypeError(
                f'nested column {self._name!r}: col[key] takes a dict of subkey -> value, got '
                f'{type(value).__name__}; to set one subsample write col[key, subkey] = value'
            )
        kenc = encode_key(key)
        return [(self._prefix + kenc + encode_key(sk), self._codec.prepare(v)) for sk, v in value.items()]

    def _stage_prepared(self, prepared: list[tuple[bytes, Prepared]]) -> None:
        typesize = self._codec.typesize
        with self:
            for skey, p in prepared:
                self._co._stage(self._name, skey, SET + p.ref, p, typesize)

    def put(self, key: Key, subkey: Key, value: Any, *, copy: bool = True) -> None:
        """``col[key, subkey] = value``; ``copy=False`` as in ``Column.put``."""
        self._check_writable()
        kenc, senc = encode_key(key), encode_key(subkey)
        p = self._codec.prepare(value, copy=copy)
        self._co._stage(self._name, self._prefix + kenc + senc, SET + p.ref, p, self._codec.typesize)

    def __delitem__(self, key: Any) -> None:
        self._check_writable()
        if isinstance(key, tuple):
            kenc, senc = encode_key(key[0]), encode_key(key[1])
            if self._sub_ref(key[0], key[1]) is None:
                raise SampleNotFound(self._name, key)
            self._co._stage(self._name, self._prefix + kenc + senc, TOMBSTONE, None, 1)
            return
        kenc = encode_key(key)
        if not self._exists(key):
            raise SampleNotFound(self._name, key)
        co = self._co
        co._flush_batch()
        staged_subs = [
            senc for senc, v in co._staging.iter_prefix(self._prefix + kenc) if senc and v[:1] == SET
        ]
        with self:
            co._stage(self._name, self._prefix + kenc, TOMBSTONE, None, 1)
            for senc in staged_subs:
                co._stage(self._name, self._prefix + kenc + senc, TOMBSTONE, None, 1)

    def rename(self, key: Key, old: Key, new: Key) -> None:
        """Move one subsample of sample ``key`` to another subkey (no data is read or copied)."""
        self._check_writable()
        ref = self._sub_ref(key, old)
        if ref is None:
            raise SampleNotFound(self._name, (key, old))
        kenc = encode_key(key)
        old_enc, new_enc = encode_key(old), encode_key(new)
        if new_enc == old_enc:
            return
        with self:
            self._co._stage(self._name, self._prefix + kenc + new_enc, SET + ref, None, 1)
            self._co._stage(self._name, self._prefix + kenc + old_enc, TOMBSTONE, None, 1)

    def restore(self, key: Key, subkey: Key, info: SampleInfo | None) -> None:
        """Put one subsample back as ``info`` (from :meth:`info`) describes it, or remove it when
        ``info`` is None; no data is read or copied."""
        self._check_writable()
        ref = self._sub_ref(key, subkey)
        skey = self._prefix + encode_key(key) + encode_key(subkey)
        if info is None:
            if ref is not None:
                self._co._stage(self._name, skey, TOMBSTONE, None, 1)
        elif ref != info.ref:
            self._co._stage(self._name, skey, SET + info.ref, None, 1)

    def pop(self, key: Key, default: Any = _MISSING) -> Any:
        self._check_writable()
        if not self._exists(key):
            if default is _MISSING:
                raise SampleNotFound(self._name, key)
            return default
        value = dict(NestedSample(self, key).items())
        del self[key]
        return value

    def update(self, other: Mapping[Key, Mapping[Key, Any]]) -> None:
        """Write many samples; one bad sample or subsample stages none of them."""
        self._check_writable()
        prepared = [pair for key, value in other.items() for pair in self._prepare_sample(key, value)]
        self._stage_prepared(prepared)
