"""Nested columns: key -> sample, where a sample maps subkeys to subsamples (``scans['patient1', 'axial']``).

``col[key]`` is a :class:`NestedSample`, shaped as Hangar 0.5's sample accessor: ``sample[subkey]``,
``sample[...]`` (every subsample, as a dict), ``sample[1:3]`` (a slice of the subsamples in key order),
``.data``, ``.column``, ``.sample``, ``.append``, ``.update``, ``.pop``, ``.iswriteable``, and a
``with sample:`` block (the column's batch). Samples are written from a mapping of subkey -> value, an
iterable of (subkey, value) pairs, or keywords, as ``dict.update`` takes them; writing a sample adds
to (or replaces) the subsamples named, leaving the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from hangarfs.engine.columns import (
    _MISSING,
    _ColumnBase,
    new_sample_key,
    read_key,
    update_pairs,
)
from hangarfs.engine.keys import Key, decode_one_key, encode_key
from hangarfs.engine.samples import Prepared, SampleInfo
from hangarfs.engine.staging import SET, TOMBSTONE
from hangarfs.errors import SampleNotFound

SubsampleValues = Mapping[Key, Any] | Iterable[tuple[Key, Any]]


class NestedSample:
    """One sample of a nested column: subkey -> subsample (Hangar's ``FlatSubsampleReader/Writer``)."""

    def __init__(self, column: NestedColumn, key: Key) -> None:
        self._column = column
        self._key = key

    # ------------------------------------------------------------------ properties

    @property
    def sample(self) -> Key:
        """The key of this sample in its column."""
        return self._key

    @property
    def column(self) -> str:
        """The name of the column."""
        return self._column.column

    @property
    def iswriteable(self) -> bool:
        return self._column.iswriteable

    @property
    def contains_remote_references(self) -> bool:
        return self._column.contains_remote_references

    @property
    def remote_reference_keys(self) -> tuple[Key, ...]:
        return self._column.remote_reference_keys

    @property
    def data(self) -> dict[Key, Any]:
        """Every subsample, as a dict of subkey -> value (``sample[...]``)."""
        values: dict[Key, Any] = self[...]
        return values

    def __reduce__(self) -> tuple[Any, tuple[NestedColumn, Key]]:
        """Pickles as its column and key (a read-only column only: see ``_ColumnBase.__reduce__``)."""
        return NestedSample, (self._column, self._key)

    # ------------------------------------------------------------------ batch context

    def __enter__(self) -> NestedSample:
        self._column.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._column.__exit__(*exc)

    @property
    def _is_conman(self) -> bool:
        return self._column._is_conman

    # Hangar's private views, which code written for Hangar (its own tests among it) inspects:
    # read-only snapshots, built when asked for

    @property
    def _enter_count(self) -> int:
        return self._column._enter_count

    @property
    def _subsamples(self) -> dict[Key, SampleInfo]:
        """Subkey -> SampleInfo (size, shape, digest) of every subsample: a snapshot."""
        return dict(self._column.iter_sub_infos(self._key))

    # ------------------------------------------------------------------ reading

    def __getitem__(self, subkey: Any) -> Any:
        """One subsample; ``...`` (or ``[:]``) every subsample as a dict; a slice, those of the
        subsamples in key order."""
        if isinstance(subkey, (str, int)):
            return self._column._get_sub(self._key, subkey)
        if subkey is Ellipsis:
            return dict(self.items())
        if isinstance(subkey, slice):
            chosen = list(self._column._sub_refs(self._key))[subkey]
            col = self._column
            return {sub: col._load_sub(self._key, sub, ref) for sub, ref in chosen}
        raise TypeError(
            f'a sample of nested column {self._column._name!r} is indexed by a subkey, ... (all '
            f'subsamples) or a slice, got {type(subkey).__name__} {subkey!r}'
        )

    def get(self, subkey: Key, default: Any = None) -> Any:
        try:
            return self[subkey]
        except KeyError:
            return default

    def __contains__(self, subkey: object) -> bool:
        try:
            return self._column._sub_ref(self._key, subkey) is not None  # type: ignore[arg-type]
        except SampleNotFound:
            return False

    def keys(self, local: bool = False) -> Iterator[Key]:
        for sub, _ in self._column._sub_refs(self._key):
            yield sub

    def __iter__(self) -> Iterator[Key]:
        return self.keys()

    def items(self, local: bool = False) -> Iterator[tuple[Key, Any]]:
        col = self._column
        for sub, ref in col._sub_refs(self._key):
            yield sub, col._load_sub(self._key, sub, ref)

    def values(self, local: bool = False) -> Iterator[Any]:
        for _, v in self.items():
            yield v

    def __len__(self) -> int:
        return sum(1 for _ in self._column._sub_refs(self._key))

    # ------------------------------------------------------------------ writing

    def __setitem__(self, subkey: Key, value: Any) -> None:
        self._column[self._key, subkey] = value

    def __delitem__(self, subkey: Key) -> None:
        del self._column[self._key, subkey]

    def update(self, other: SubsampleValues | None = None, **kwargs: Any) -> None:
        """Write many subsamples (a mapping, (subkey, value) pairs, or keywords); one bad one stages none."""
        self._column._writer()
        self._column[self._key] = dict(update_pairs(self._column._name, other, kwargs))

    def append(self, value: Any) -> str:
        """Store ``value`` under a generated subkey and return it (Hangar's ``append``)."""
        self._column._writer()
        subkey = new_sample_key(self.__contains__)
        self._column.put(self._key, subkey, value)
        return subkey

    def pop(self, subkey: Key) -> Any:
        """Remove one subsample and return its value."""
        value = self[subkey]
        del self[subkey]
        return value

    def __repr__(self) -> str:
        return f'<NestedSample {self._key!r} of column {self._column._name!r}: {len(self)} subsamples>'


class NestedColumn(_ColumnBase):
    """A nested column: key -> {subkey -> subsample}. ``col[key]`` is a :class:`NestedSample`."""

    # ------------------------------------------------------------------ reading

    def _sub_refs_enc(self, kenc: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._access.sub_items(self._name, kenc)

    def _sub_refs(self, key: Key) -> Iterator[tuple[Key, bytes]]:
        for senc, ref in self._sub_refs_enc(read_key(self._name, key)):
            yield decode_one_key(senc), ref

    def _sub_ref(self, key: Key, subkey: Key) -> bytes | None:
        kenc, senc = read_key(self._name, key), read_key(self._name, subkey)
        return self._access.sub_ref(self._name, kenc, senc)

    def _load_sub(self, key: Key, subkey: Key, ref: bytes) -> Any:
        return self._access.load(self._name, (key, subkey), ref, self._codec)

    def _get_sub(self, key: Key, subkey: Key) -> Any:
        ref = self._sub_ref(key, subkey)
        if ref is None:
            raise SampleNotFound(self._name, (key, subkey))
        return self._load_sub(key, subkey, ref)

    def info(self, key: Key, subkey: Key) -> SampleInfo | None:
        """Size, shape and digest of one subsample without reading it (None if absent)."""
        ref = self._sub_ref(key, subkey)
        return self._codec.info(ref) if ref is not None else None

    def iter_sub_infos(self, key: Key) -> Iterator[tuple[Key, SampleInfo]]:
        """(subkey, SampleInfo) of every subsample of sample ``key``, in subkey order."""
        for sub, ref in self._sub_refs(key):
            yield sub, self._codec.info(ref)

    def _exists(self, key: Key) -> bool:
        return next(iter(self._sub_refs_enc(read_key(self._name, key))), None) is not None

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
            if isinstance(key, tuple) and len(key) == 2:
                return self._sub_ref(key[0], key[1]) is not None
            return self._exists(key)  # type: ignore[arg-type]
        except SampleNotFound:
            return False

    def _iter_keys_enc(self) -> Iterator[bytes]:
        return self._access.sample_keys(self._name)

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
        return self._access.sample_count(self._name)

    @property
    def _samples(self) -> dict[Key, NestedSample]:
        """Key -> sample of every sample (Hangar's private view): a snapshot, built when asked for."""
        return {key: NestedSample(self, key) for key in self.keys()}

    @property
    def num_subsamples(self) -> int:
        return sum(sum(1 for _ in self._sub_refs_enc(k)) for k in self._iter_keys_enc())

    # ------------------------------------------------------------------ writing

    def __setitem__(self, key: Any, value: Any) -> None:
        self._writer()
        if isinstance(key, tuple):
            if len(key) != 2:
                raise KeyError(f'nested column {self._name!r} takes col[key, subkey], got {key!r}')
            self.put(key[0], key[1], value)
            return
        self._stage_prepared(self._prepare_sample(key, value))

    def _prepare_sample(self, key: Key, value: Any) -> list[tuple[bytes, Prepared]]:
        """Validate a whole sample (subkey -> value: a mapping or pairs); return (stage key, prepared)."""
        kenc = encode_key(key)
        if isinstance(value, (str, bytes, np.ndarray)):  # a value, where a map of values belongs
            raise TypeError(
                f'nested column {self._name!r}: col[key] takes a dict of subkey -> value, got '
                f'{type(value).__name__} for sample {key!r}; to set one subsample write '
                'col[key, subkey] = value'
            )
        try:
            pairs = update_pairs(self._name, value, {})
        except (TypeError, ValueError) as err:
            hint = (
                f'; col[key] takes a dict of subkey -> value, got {type(value).__name__} for sample {key!r} '
                '(to set one subsample write col[key, subkey] = value)'
            )
            raise type(err)(f'{err}{hint}') from err
        return [(self._prefix + kenc + encode_key(sk), self._codec.prepare(v)) for sk, v in pairs]

    def _stage_prepared(self, prepared: list[tuple[bytes, Prepared]]) -> None:
        writer = self._writer()
        typesize = self._codec.typesize
        with self:
            for skey, p in prepared:
                writer.stage(self._name, skey, SET + p.ref, p, typesize)

    def put(self, key: Key, subkey: Key, value: Any, *, copy: bool = True) -> None:
        """``col[key, subkey] = value``; ``copy=False`` as in ``Column.put``."""
        writer = self._writer()
        kenc, senc = encode_key(key), encode_key(subkey)
        p = self._codec.prepare(value, copy=copy)
        writer.stage(self._name, self._prefix + kenc + senc, SET + p.ref, p, self._codec.typesize)

    def __delitem__(self, key: Any) -> None:
        writer = self._writer()
        if isinstance(key, tuple):
            kenc, senc = encode_key(key[0]), encode_key(key[1])
            if self._sub_ref(key[0], key[1]) is None:
                raise SampleNotFound(self._name, key)
            writer.stage(self._name, self._prefix + kenc + senc, TOMBSTONE, None, 1)
            return
        kenc = encode_key(key)
        if not self._exists(key):
            raise SampleNotFound(self._name, key)
        staged_subs = [senc for senc, v in writer.overlay(self._prefix + kenc) if senc and v[:1] == SET]
        with self:
            writer.stage(self._name, self._prefix + kenc, TOMBSTONE, None, 1)
            for senc in staged_subs:
                writer.stage(self._name, self._prefix + kenc + senc, TOMBSTONE, None, 1)

    def rename(self, key: Key, old: Key, new: Key) -> None:
        """Move one subsample of sample ``key`` to another subkey (no data is read or copied)."""
        writer = self._writer()
        ref = self._sub_ref(key, old)
        if ref is None:
            raise SampleNotFound(self._name, (key, old))
        kenc = encode_key(key)
        old_enc, new_enc = encode_key(old), encode_key(new)
        if new_enc == old_enc:
            return
        with self:
            writer.stage(self._name, self._prefix + kenc + new_enc, SET + ref, None, 1)
            writer.stage(self._name, self._prefix + kenc + old_enc, TOMBSTONE, None, 1)

    def restore(self, key: Key, subkey: Key, info: SampleInfo | None) -> None:
        """Put one subsample back as ``info`` (from :meth:`info`) describes it, or remove it when
        ``info`` is None; no data is read or copied."""
        writer = self._writer()
        ref = self._sub_ref(key, subkey)
        skey = self._prefix + encode_key(key) + encode_key(subkey)
        if info is None:
            if ref is not None:
                writer.stage(self._name, skey, TOMBSTONE, None, 1)
        elif ref != info.ref:
            writer.stage(self._name, skey, SET + info.ref, None, 1)

    def pop(self, key: Key, default: Any = _MISSING) -> Any:
        self._writer()
        if not self._exists(key):
            if default is _MISSING:
                raise SampleNotFound(self._name, key)
            return default
        value = dict(NestedSample(self, key).items())
        del self[key]
        return value

    def update(
        self,
        other: Mapping[Key, SubsampleValues] | Iterable[tuple[Key, SubsampleValues]] | None = None,
        **kwargs: SubsampleValues,
    ) -> None:
        """Write many samples (a mapping of key -> subsamples, (key, subsamples) pairs, or keywords;
        the subsamples of each as a mapping or pairs); one bad sample or subsample stages none."""
        self._writer()
        samples = update_pairs(self._name, other, kwargs)
        prepared = [pair for key, value in samples for pair in self._prepare_sample(key, value)]
        self._stage_prepared(prepared)
