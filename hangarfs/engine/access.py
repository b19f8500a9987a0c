"""The access layer under the columns: how a column reaches its samples.

A :class:`ReadAccess` reads one commit: its snapshot's trees through the store (verified tree nodes,
sample locations, backend reads). A :class:`~hangarfs.engine.staged_access.StagedAccess` (the
writer's, in ``staged_access.py``) adds the staging area: reads
merge the staged overlay over the base commit's trees, and writes gather in a :class:`WriteBatch` that
becomes durable in one transaction (at once, or when the outermost ``with`` block exits).

Columns, metadata and the checkout facades depend on these two types and nothing else of a checkout.
A reader's access has no write methods at all, so a column of a read checkout cannot reach a write
path: "read-only" is a type (columns narrow to :class:`StagedAccess` before writing, and refuse with
ReadOnlyError otherwise).

The access of a checkout is shared by all its columns. Closing the checkout closes it; a reset of the
staging area closes the old one (column objects from before the reset then refuse, as in Hangar) and
the checkout makes a new one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from hangarfs.engine.bulk import INDEX_MIN_SAMPLES, INDEX_SHARE, ColumnIndex, build_index, read_locations
from hangarfs.engine.keys import Key, encode_key
from hangarfs.engine.records import DIGEST_SIZE, EMPTY_ROOT, ColumnSchema, Digest, Snapshot
from hangarfs.engine.samples import SampleCodec
from hangarfs.engine.store import RepoStore
from hangarfs.engine.tree import tree_get, tree_get_many, tree_items, tree_scan_key_blocks, tree_scan_keys
from hangarfs.errors import (
    ClosedError,
    CorruptData,
    DataNotLocal,
    SampleNotFound,
    SampleReadError,
    sample_not_local,
)

CLOSED = 'this checkout is closed; open a new one with repo.checkout(...)'


class ReadAccess:
    """One commit's columns and metadata, read through the store (see the module docstring)."""

    writable = False

    def __init__(self, store: RepoStore, commit: str, snapshot: Snapshot) -> None:
        self.store = store
        self.commit = commit
        self.snapshot = snapshot
        self.with_blocks = 0  # `with co:` and `with co.columns:` blocks open now (Hangar's batches)
        self._closed: str | None = None
        self.closed_as = ''  # what a closed access belonged to, for reprs ('a closed checkout', ...)
        self._indexes: dict[str, ColumnIndex | None] = {}  # bulk-read indexes (None: not possible)
        self._asked: dict[str, int] = {}  # samples asked for by bulk reads, per column without index
        self._index_lock = threading.Lock()

    # ------------------------------------------------------------------ open / closed

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def close(self, reason: str = CLOSED, *, closed_as: str = 'a closed checkout') -> None:
        """Refuse every use from now on, with ``reason`` as the error message."""
        self._closed = reason
        self.closed_as = closed_as
        self._indexes.clear()

    def check_open(self) -> None:
        if self._closed is not None:
            raise ClosedError(self._closed)

    # ------------------------------------------------------------------ schemas and counts

    def schemas(self) -> dict[str, ColumnSchema]:
        return {n: s.schema for n, s in self.snapshot.columns.items()}

    def root(self, name: str) -> Digest:
        st = self.snapshot.columns.get(name)
        return st.root if st is not None else EMPTY_ROOT

    def count(self, name: str) -> int:
        """Samples in a column (outer keys of a nested one); O(1)."""
        self.check_open()
        st = self.snapshot.columns.get(name)
        return st.count if st is not None else 0

    # ------------------------------------------------------------------ flat columns

    def ref(self, name: str, kenc: bytes) -> bytes | None:
        """The tree reference of one sample, or None."""
        self.check_open()
        return tree_get(self.store.nodes, self.root(name), kenc)

    def refs_many(self, name: str, kencs: Sequence[bytes]) -> list[bytes | None]:
        """The refs of many samples (None where absent), the tree walked once for all of them."""
        self.check_open()
        return self._base_refs(name, kencs)

    def _base_refs(self, name: str, kencs: Sequence[bytes]) -> list[bytes | None]:
        if len(kencs) == 1:  # one durable write, one lookup: no batch machinery
            return [tree_get(self.store.nodes, self.root(name), kencs[0])]
        uniq = sorted(set(kencs))
        found = dict(zip(uniq, tree_get_many(self.store.nodes, self.root(name), uniq)))
        return [found[k] for k in kencs]

    def iter_refs(self, name: str) -> Iterator[tuple[bytes, bytes]]:
        """(encoded key, ref) of every sample, in key order."""
        self.check_open()
        return tree_items(self.store.nodes, self.root(name))

    def scan_keys(self, name: str) -> Iterator[bytes]:
        """Every encoded key, in order, without decoding any ref."""
        self.check_open()
        return tree_scan_keys(self.store.nodes, self.root(name))

    def key_blocks(self, name: str) -> Iterator[list[bytes]]:
        """The encoded keys a tree leaf at a time (the fast path for listing millions)."""
        self.check_open()
        return tree_scan_key_blocks(self.store.nodes, self.root(name))

    # ------------------------------------------------------------------ nested columns

    def outer(self, name: str, kenc: bytes) -> tuple[bool, bytes]:
        """(sample removed in the staging area, root of the sample's subsample tree in the base)."""
        self.check_open()
        val = tree_get(self.store.nodes, self.root(name), kenc)
        return False, (val[:DIGEST_SIZE] if val is not None else EMPTY_ROOT)

    def sub_items(self, name: str, kenc: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(encoded subkey, ref) of every subsample of sample ``kenc``, in order."""
        _, inner = self.outer(name, kenc)
        return tree_items(self.store.nodes, inner)

    def sub_ref(self, name: str, kenc: bytes, senc: bytes) -> bytes | None:
        dead, inner = self.outer(name, kenc)
        return None if dead else tree_get(self.store.nodes, inner, senc)

    def sample_keys(self, name: str) -> Iterator[bytes]:
        """The encoded keys of a nested column's samples, in order."""
        self.check_open()
        return (k for k, _ in tree_items(self.store.nodes, self.root(name)))

    def sample_count(self, name: str) -> int:
        return self.count(name)

    # ------------------------------------------------------------------ sample bytes

    def data(self, digest: bytes) -> bytes | bytearray:
        loc = self.store.location(digest)
        if loc is None:
            raise CorruptData(f'no stored bytes for sample digest {digest.hex()}')
        return self.store.backends.read(loc)

    def load(self, column: str, key: Any, ref: bytes, codec: SampleCodec) -> Any:
        """The value a ref stands for, read and verified (errors name the column and key)."""
        self.check_open()
        if codec.inline:
            return codec.decode(ref, ref)
        try:
            data = self.data(ref[:DIGEST_SIZE])
        except DataNotLocal as err:
            data = self.remote_bytes(column, key, ref, codec, 0, codec.nbytes_of(ref), err)
        except (CorruptData, OSError) as err:
            raise SampleReadError(column, key, err) from err
        if len(data) != codec.nbytes_of(ref):
            raise SampleReadError(
                column,
                key,
                CorruptData(f'stored value holds {len(data)} bytes, expected {codec.nbytes_of(ref)}'),
            )
        return codec.decode(data, ref)

    def load_many(
        self, column: str, keys: Sequence[Key], refs: Sequence[bytes], codec: SampleCodec | None = None
    ) -> list[bytes | bytearray]:
        """The stored bytes of many samples: locations looked up together, each read verified (a sample
        only a remote holds through the store's remote reader when ``codec`` is given)."""
        self.check_open()
        digests = [ref[:DIGEST_SIZE] for ref in refs]
        found = self.store.locations(list(dict.fromkeys(digests)))
        read = self.store.backends.read
        out = []
        for key, digest, ref in zip(keys, digests, refs):
            try:
                loc = found.get(digest)
                out.append(read(loc) if loc is not None else self.data(digest))
            except DataNotLocal as err:
                if codec is None:
                    raise sample_not_local(err.remote, column, key, self.commit) from err
                out.append(self.remote_bytes(column, key, ref, codec, 0, codec.nbytes_of(ref), err))
            except (CorruptData, OSError) as err:
                raise SampleReadError(column, key, err) from err
        return out

    def read_fixed(self, column: str, codec: SampleCodec, keys: Sequence[Key] | np.ndarray) -> np.ndarray:
        """The samples of a fixed-shape array column stacked in one new array, in ``keys`` order (the bulk
        read: see ``bulk.py``); SampleNotFound names the first absent key, SampleReadError a damaged one."""
        self.check_open()
        n = len(keys)
        out = np.empty((n, codec.fixed_nbytes), dtype=np.uint8)
        index = self._index(column, codec, n)
        if index is not None:
            rows = index.rows_of(keys)
            missing = np.flatnonzero(rows < 0)
            if len(missing):
                raise SampleNotFound(column, keys[int(missing[0])])
            try:
                index.read(rows, out)
            except (CorruptData, OSError, DataNotLocal):
                refs = self.refs_many(column, self._encode(keys))
                return self._read_fixed_slowly(column, codec, keys, refs)
            return self._shaped(codec, out)
        refs = self.refs_many(column, self._encode(keys))
        for k, ref in zip(keys, refs):
            if ref is None:
                raise SampleNotFound(column, k)
        if codec.inline:
            return self._shaped(codec, self._inline_rows(column, codec, keys, refs))  # type: ignore[arg-type]
        digests = [ref[:DIGEST_SIZE] for ref in refs]  # type: ignore[index]
        self._before_bulk_read()
        found = self.store.locations(list(dict.fromkeys(digests)))
        try:
            read_locations(self.store.backends, [found[d] for d in digests], out)
        except (CorruptData, OSError, KeyError, DataNotLocal):
            # the per-sample path names the key that failed, and reads (or names the remote of) a
            # sample only a remote holds
            return self._read_fixed_slowly(column, codec, keys, refs)
        return self._shaped(codec, out)

    @staticmethod
    def _encode(keys: Sequence[Key] | np.ndarray) -> list[bytes]:
        if isinstance(keys, np.ndarray):
            keys = keys.tolist()
        return [encode_key(k) for k in keys]

    @staticmethod
    def _shaped(codec: SampleCodec, out: np.ndarray) -> np.ndarray:
        return out.view(codec.dtype).reshape(len(out), *codec.shape)

    @staticmethod
    def _inline_rows(column: str, codec: SampleCodec, keys: Any, refs: list[bytes]) -> np.ndarray:
        size = codec.fixed_nbytes
        for key, ref in zip(keys, refs):
            if len(ref) != size:
                raise SampleReadError(
                    column, key, CorruptData(f'stored value holds {len(ref)} bytes, expected {size}')
                )
        return np.frombuffer(bytearray().join(refs), dtype=np.uint8).reshape(len(refs), size)

    def _read_fixed_slowly(
        self, column: str, codec: SampleCodec, keys: Any, refs: list[bytes | None]
    ) -> np.ndarray:
        """One sample at a time (after the bulk path met damage: this names the key that fails)."""
        out = np.empty((len(keys), codec.fixed_nbytes), dtype=np.uint8)
        for i, (key, ref) in enumerate(zip(keys, refs)):
            if ref is None:
                raise SampleNotFound(column, key)
            value = self.load(column, key, ref, codec)
            out[i] = np.frombuffer(value.tobytes(), dtype=np.uint8)
        return self._shaped(codec, out)

    def _before_bulk_read(self) -> None:
        """What must happen before sample locations are looked up (a writer flushes its batch)."""

    def prepare_bulk_reads(self, column: str, codec: SampleCodec) -> None:
        """Build the bulk-read index of a fixed-shape column now (a reader about to read most of it)."""
        self.check_open()
        self._index(column, codec, 0, now=True)

    def _index(self, column: str, codec: SampleCodec, nkeys: int, now: bool = False) -> ColumnIndex | None:
        """The column's bulk-read index, built once this reader has asked for 1/16 of the column."""
        if column in self._indexes:
            return self._indexes[column]
        st = self.snapshot.columns.get(column)
        if st is None:
            return None
        if not now:
            if st.count < INDEX_MIN_SAMPLES:
                return None
            asked = self._asked.get(column, 0) + nkeys
            self._asked[column] = asked
            if asked * INDEX_SHARE < st.count:
                return None
        with self._index_lock:
            if column not in self._indexes:
                try:
                    index = build_index(
                        self.store.nodes,
                        st.root,
                        self.store.locations,
                        self.store.backends,
                        codec.fixed_nbytes if codec.inline else None,
                    )
                except (CorruptData, OSError):
                    index = None  # damage somewhere: batches take the per-key path, which names it
                self._indexes[column] = index
        return self._indexes[column]

    def read_range(
        self,
        column: str,
        key: Any,
        digest: bytes,
        start: int,
        stop: int,
        *,
        ref: bytes = b'',
        codec: SampleCodec | None = None,
    ) -> bytes:
        """Bytes ``[start, stop)`` of a sample's stored form, reading only the chunks they touch (of a
        sample only a remote holds, through the store's remote reader when ``ref`` and ``codec`` are
        given)."""
        self.check_open()
        if stop <= start:
            return b''
        try:
            loc = self.store.location(digest)
            if loc is None:
                raise CorruptData(f'no stored bytes for sample digest {digest.hex()}')
            return self.store.backends.for_location(loc).read_range(loc, start, stop)
        except DataNotLocal as err:
            if codec is None or not ref:
                raise sample_not_local(err.remote, column, key, self.commit) from err
            return self.remote_bytes(column, key, ref, codec, start, stop, err)
        except (CorruptData, OSError) as err:
            raise SampleReadError(column, key, err) from err

    def remote_bytes(
        self, column: str, key: Any, ref: bytes, codec: SampleCodec, start: int, stop: int, err: DataNotLocal
    ) -> bytes:
        """Bytes ``[start, stop)`` of a sample only a remote holds: through the store's remote reader
        (a lazy mount's), verified against the sample digest; else DataNotLocal saying how to fetch it."""
        reader = self.store.remote_reader
        if reader is None:
            raise sample_not_local(err.remote, column, key, self.commit) from err
        digest = ref[:DIGEST_SIZE]
        return reader.read_range(digest, self.store.location(digest) or b'', codec, ref, start, stop)

    # ------------------------------------------------------------------ metadata

    def metadata_get(self, kenc: bytes) -> bytes | None:
        self.check_open()
        return tree_get(self.store.nodes, self.snapshot.metadata_root, kenc)

    def metadata_items(self) -> Iterator[tuple[bytes, bytes]]:
        self.check_open()
        return tree_items(self.store.nodes, self.snapshot.metadata_root)
