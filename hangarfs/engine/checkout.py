"""Checkouts: a read-only view of one commit, or the one writer over a branch's staging area.

Opening either is O(1): a reader reads one commit record and its snapshot; a writer takes the writer
lock and reads the staging area's branch and base. Columns, samples and metadata are looked up lazily
through the trees, never by loading a whole commit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from hangarfs.backends import BACKEND_CLASSES, backend_code
from hangarfs.engine.checkout_diff import CheckoutDiff, WriterCheckoutDiff
from hangarfs.engine.columns import Column, NestedColumn, _ColumnBase, _merge_sorted
from hangarfs.engine.commit import commit_staging
from hangarfs.engine.keys import Key, check_name, decode_one_key, encode_key
from hangarfs.engine.merge import merge_into_branch
from hangarfs.engine.properties import PropertyValue, normalize_properties
from hangarfs.engine.records import EMPTY_ROOT, ColumnSchema, Digest, Snapshot
from hangarfs.engine.refs import is_remote_branch_name
from hangarfs.engine.samples import INLINE_VALUE_BYTES, SampleCodec, normalize_dtype
from hangarfs.engine.staging import REPLACED, SET, TOMBSTONE, StagingArea, WriteBatch, column_prefix
from hangarfs.engine.staging_status import has_staged_changes, settle
from hangarfs.engine.store import RepoStore
from hangarfs.engine.tree import tree_get, tree_items
from hangarfs.engine.writer import WriterSession
from hangarfs.errors import (
    ClosedError,
    ColumnExists,
    ColumnNotFound,
    CorruptData,
    DataNotLocal,
    NothingToCommit,
    ReadOnlyError,
    RefNotFound,
    SampleReadError,
    StagingDirty,
    sample_not_local,
)

TINY_ARRAY_BYTES = 64  # arrays up to this size default to the lmdb backend (inline)
SMALL_ARRAY_BYTES = 512  # fixed-shape arrays up to this size default to the numpy backend


def default_backend_for(kind: str, nbytes: int, variable_shape: bool, configured: str) -> str:
    """The backend a new column gets when none is named."""
    if configured:
        return configured
    if kind != 'ndarray' or nbytes <= TINY_ARRAY_BYTES:
        return '30'
    if not variable_shape and nbytes <= SMALL_ARRAY_BYTES:
        return '10'
    return '00'


class Columns(Mapping[str, _ColumnBase]):
    """The columns of a checkout: ``co.columns['images']``, ``'images' in co.columns``, ``len``."""

    def __init__(self, checkout: Checkout) -> None:
        self._co = checkout

    def __getitem__(self, name: str) -> _ColumnBase:
        return self._co._column(name)

    def __iter__(self) -> Iterator[str]:
        self._co._check_open()
        return iter(sorted(self._co._schemas()))

    def __len__(self) -> int:
        self._co._check_open()
        return len(self._co._schemas())

    def __contains__(self, name: object) -> bool:
        self._co._check_open()
        return name in self._co._schemas()

    @property
    def iswriteable(self) -> bool:
        return self._co._writable

    def delete(self, name: str) -> str:
        """Remove a column (staged until the next commit); returns its name."""
        self._co._delete_column(name)
        return name

    def __delitem__(self, name: str) -> None:
        self.delete(name)

    def __repr__(self) -> str:
        if self._co._closed:
            return '<Columns of a closed checkout>'
        rows = [
            f'  {name:<24} {self._co._column(name)._schema.kind:<8} {len(self._co._column(name))} samples'
            for name in self
        ]
        body = '\n'.join(rows) if rows else '  (no columns)'
        return f'<Columns: {len(self)} in a {"write" if self._co._writable else "read"} checkout\n{body}>'


class Metadata(MutableMapping[str, str]):
    """Versioned str -> str pairs (``co.metadata['source'] = 'mnist v1'``)."""

    def __init__(self, checkout: Checkout) -> None:
        self._co = checkout

    def _raw(self, key: str) -> str | None:
        co = self._co
        co._check_open()
        kenc = encode_key(check_name(key, 'metadata key'))
        if co._writable and co._meta_dirty:
            staged = co._staging.meta()
            if kenc in staged:
                v = staged[kenc]
                return v.decode() if v is not None else None
        v = tree_get(co._store.nodes, co._snapshot.metadata_root, kenc)
        return v.decode() if v is not None else None

    def __getitem__(self, key: str) -> str:
        v = self._raw(key)
        if v is None:
            raise KeyError(key)
        return v

    def __setitem__(self, key: str, value: str) -> None:
        co = self._co
        co._check_writable()
        if not isinstance(value, str):
            raise TypeError(f'metadata values are str, got {type(value).__name__} for key {key!r}')
        kenc = encode_key(check_name(key, 'metadata key'))
        co._flush_batch(meta={kenc: SET + value.encode('utf-8')})

    def __delitem__(self, key: str) -> None:
        co = self._co
        co._check_writable()
        if self._raw(key) is None:
            raise KeyError(key)
        co._flush_batch(meta={encode_key(key): TOMBSTONE})

    def _items_enc(self) -> Iterator[tuple[bytes, bytes]]:
        co = self._co
        co._check_open()
        base = tree_items(co._store.nodes, co._snapshot.metadata_root)
        if not co._writable or not co._meta_dirty:
            return base
        staged = sorted((k, (SET + v) if v is not None else TOMBSTONE) for k, v in co._staging.meta().items())
        return _merge_sorted(base, iter(staged))

    def __iter__(self) -> Iterator[str]:
        for k, _ in self._items_enc():
            yield str(decode_one_key(k))

    def items(self) -> Any:
        return [(str(decode_one_key(k)), v.decode()) for k, v in self._items_enc()]

    def __len__(self) -> int:
        return sum(1 for _ in self._items_enc())

    def __repr__(self) -> str:
        return f'<Metadata {dict(self.items())!r}>'


class Checkout:
    """What read and write checkouts share."""

    _writable = False
    _meta_dirty = False
    _staging: StagingArea

    def __init__(self, store: RepoStore, commit: str, branch: str | None) -> None:
        self._store = store
        self._commit = commit
        self._branch = branch
        self._snapshot: Snapshot = store.objects.snapshot(commit)
        self._closed = False
        self._column_cache: dict[str, _ColumnBase] = {}
        self.columns = Columns(self)
        self.metadata = Metadata(self)

    # ------------------------------------------------------------------ public

    @property
    def commit_hash(self) -> str:
        self._check_open()
        return self._commit

    @property
    def branch_name(self) -> str | None:
        return self._branch

    @property
    def commit_properties(self) -> dict[str, PropertyValue]:
        """The properties recorded on this checkout's commit (a writer: on its base commit)."""
        self._check_open()
        return dict(self._store.objects.commit(self._commit).properties) if self._commit else {}

    @property
    def iswriteable(self) -> bool:
        return self._writable

    @property
    def diff(self) -> CheckoutDiff:
        """Differences from this checkout: ``co.diff.commit(ref)``, ``co.diff.branch(name)``."""
        return CheckoutDiff(self)

    def __getitem__(self, index: Any) -> Any:
        """``co['images']``: a column; ``co['images', 0]``: a sample; ``co[['a', 'b'], 0]``: a list."""
        if isinstance(index, str):
            return self._column(index)
        if isinstance(index, tuple) and len(index) >= 2:
            cols, key = index[0], index[1:] if len(index) > 2 else index[1]
            if isinstance(cols, str):
                return self._column(cols)[key]
            if isinstance(cols, (list, tuple)):
                return [self._column(c)[key] for c in cols]
        raise TypeError(f"index a checkout with co['column'] or co['column', key], got {index!r}")

    def __enter__(self) -> Checkout:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._column_cache.clear()

    # ------------------------------------------------------------------ internals used by columns

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError('this checkout is closed; open a new one with repo.checkout(...)')

    def _check_writable(self) -> None:
        self._check_open()
        if not self._writable:
            raise ReadOnlyError(
                'this checkout is read-only; open one with repo.checkout(write=True) to write'
            )

    def _schemas(self) -> dict[str, ColumnSchema]:
        return {n: s.schema for n, s in self._snapshot.columns.items()}

    def _column(self, name: str) -> _ColumnBase:
        self._check_open()
        col = self._column_cache.get(name)
        if col is not None:
            return col
        schemas = self._schemas()
        schema = schemas.get(name)
        if schema is None:
            raise ColumnNotFound(name, list(schemas))
        col = (NestedColumn if schema.nested else Column)(self, name, schema)
        self._column_cache[name] = col
        return col

    def _root(self, name: str) -> Digest:
        st = self._snapshot.columns.get(name)
        return st.root if st is not None else EMPTY_ROOT

    def _count(self, name: str) -> int:
        self._check_open()
        st = self._snapshot.columns.get(name)
        return st.count if st is not None else 0

    def _staged(self, skey: bytes) -> bytes | None:
        return None

    def _data(self, digest: bytes) -> bytes | bytearray:
        loc = self._store.location(digest)
        if loc is None:
            raise CorruptData(f'no stored bytes for sample digest {digest.hex()}')
        return self._store.backends.read(loc)

    def _load(self, column: str, key: Any, ref: bytes, codec: SampleCodec) -> Any:
        if codec.inline:
            return codec.decode(ref, ref)
        try:
            data = self._data(ref[:32])
        except DataNotLocal as err:
            data = self._remote_bytes(column, key, ref, codec, 0, codec.nbytes_of(ref), err)
        except (CorruptData, OSError) as err:
            raise SampleReadError(column, key, err) from err
        if len(data) != codec.nbytes_of(ref):
            raise SampleReadError(
                column,
                key,
                CorruptData(f'stored value holds {len(data)} bytes, expected {codec.nbytes_of(ref)}'),
            )
        return codec.decode(data, ref)

    def _read_range(
        self, column: str, key: Any, digest: bytes, start: int, stop: int, ref: bytes = b''
    ) -> bytes:
        self._check_open()
        if stop <= start:
            return b''
        try:
            loc = self._store.location(digest)
            if loc is None:
                raise CorruptData(f'no stored bytes for sample digest {digest.hex()}')
            return self._store.backends.for_location(loc).read_range(loc, start, stop)
        except DataNotLocal as err:
            codec = self._column(column)._codec
            return self._remote_bytes(column, key, ref or digest, codec, start, stop, err)
        except (CorruptData, OSError) as err:
            raise SampleReadError(column, key, err) from err

    def _remote_bytes(
        self, column: str, key: Any, ref: bytes, codec: SampleCodec, start: int, stop: int, err: DataNotLocal
    ) -> bytes:
        """Bytes ``[start, stop)`` of a sample only a remote holds: through the store's remote reader
        (a lazy mount's), verified against the sample digest; else an error saying how to fetch it."""
        reader = self._store.remote_reader
        if reader is None:
            raise sample_not_local(err.remote, column, key, self._commit) from err
        digest = ref[:32]
        loc = self._store.location(digest) or b''
        return reader.read_range(digest, loc, codec, ref, start, stop)

    def _refs_many(self, column: str, kencs: Sequence[bytes]) -> list[bytes | None]:
        self._check_open()
        nodes, root = self._store.nodes, self._root(column)
        return [tree_get(nodes, root, k) for k in kencs]

    def _load_many(self, column: str, keys: Sequence[Key], refs: Sequence[bytes]) -> list[bytes | bytearray]:
        """The stored bytes of many samples: locations looked up together, each read verified."""
        digests = [ref[:32] for ref in refs]
        found = self._store.locations(list(dict.fromkeys(digests)))
        read = self._store.backends.read
        out = []
        for key, digest, ref in zip(keys, digests, refs):
            try:
                loc = found.get(digest)
                out.append(read(loc) if loc is not None else self._data(digest))
            except DataNotLocal as err:
                codec = self._column(column)._codec
                out.append(self._remote_bytes(column, key, ref, codec, 0, codec.nbytes_of(ref), err))
            except (CorruptData, OSError) as err:
                raise SampleReadError(column, key, err) from err
        return out

    def _staging_has_column(self, name: str) -> bool:
        return False

    # write operations: reached only after _check_writable(), so a reader never gets here

    def _stage(self, column: str, skey: bytes, value: bytes, prepared: Any, typesize: int) -> None:
        self._check_writable()

    def _stage_many(
        self, column: str, entries: list[tuple[bytes, bytes]], prepared: list[Any], typesize: int
    ) -> None:
        self._check_writable()

    def _set_schema(self, name: str, schema: ColumnSchema) -> None:
        self._check_writable()

    def _delete_column(self, name: str) -> None:
        self._check_writable()

    def _enter_batch(self) -> None:
        pass

    def _exit_batch(self) -> None:
        pass

    def _flush_batch(
        self, meta: dict[bytes, bytes] | None = None, schemas: dict[str, bytes] | None = None
    ) -> None:
        pass

    def __repr__(self) -> str:
        if self._closed:
            return f'<{type(self).__name__} (closed)>'
        where = f'branch {self._branch!r} at ' if self._branch else ''
        head = self._commit[:12] if self._commit else '(no commits yet)'
        cols = ', '.join(sorted(self._schemas())) or 'no columns'
        return f'<{type(self).__name__} of {self._store.path}: {where}commit {head}; columns: {cols}>'


class ReaderCheckout(Checkout):
    """A read-only view of one commit. Any number can be open, in any number of processes."""

    def __init__(self, store: RepoStore, commit: str, branch: str | None = None) -> None:
        if not commit:
            what = f'branch {branch!r}' if branch else 'this repository'
            raise RefNotFound(
                branch or '', message=f'{what} has no commits yet, so there is nothing to read; commit first'
            )
        super().__init__(store, commit, branch)


class WriterCheckout(Checkout):
    """The one writer: stages changes on a branch and commits them."""

    _writable = True

    def __init__(
        self, store: RepoStore, branch: str, author: str, email: str, lock_info: dict[str, Any]
    ) -> None:
        if is_remote_branch_name(branch):
            raise ReadOnlyError(
                f'{branch!r} is a remote-tracking branch (only fetch and push move it); to change it, '
                f"start a local branch there: repo.create_branch('NAME', {branch!r}), then check that out "
                'for writing'
            )
        session = WriterSession(store, **lock_info)
        try:
            staging = session.staging
            head = store.refs.branch_head(branch)
            if head is None:
                raise RefNotFound(branch, 'branch')
            info = staging.info()
            if info.branch != branch or info.base != head:
                if settle(store, staging):  # real changes (entries that change nothing are dropped)
                    if info.branch != branch:
                        raise StagingDirty(
                            f'the staging area holds uncommitted changes on branch {info.branch!r}; commit '
                            f'them or reset the staging area on that branch before writing to {branch!r}'
                        )
                    raise StagingDirty(
                        f'branch {branch!r} moved to {head[:12]} while changes were staged on '
                        f'{info.base[:12]}; reset the staging area (they cannot be committed on the new head)'
                    )
                staging.set_info(branch, head)
            super().__init__(store, head, branch)
        except BaseException:
            session.close()
            raise
        self._session = session
        self._staging = staging
        self._author = author
        self._email = email
        self._batch = WriteBatch()
        self._batch_depth = 0
        self._staged_schemas: dict[str, ColumnSchema | None] = staging.schemas()
        self._replaced: set[str] = staging.replaced()  # committed columns removed and added again
        self._meta_dirty = bool(staging.meta())

    # ------------------------------------------------------------------ schemas

    def _schemas(self) -> dict[str, ColumnSchema]:
        out = {n: s.schema for n, s in self._snapshot.columns.items()}
        for name, schema in self._staged_schemas.items():
            if schema is None:
                out.pop(name, None)
            else:
                out[name] = schema
        return out

    def _root(self, name: str) -> Digest:
        if name in self._replaced or (name in self._staged_schemas and name not in self._snapshot.columns):
            return EMPTY_ROOT
        return super()._root(name)

    def _set_schema(self, name: str, schema: ColumnSchema) -> None:
        marker = REPLACED if name in self._replaced else SET
        self._flush_batch(schemas={name: marker + schema.to_bytes()})
        self._staged_schemas[name] = schema

    def _add_column(self, name: str, schema: ColumnSchema) -> _ColumnBase:
        self._check_writable()
        check_name(name, 'column name')
        if name in self._schemas():
            raise ColumnExists(name)
        if name in self._snapshot.columns:  # removed in this staging area: the new column starts empty
            self._replaced.add(name)
        self._set_schema(name, schema)
        self._column_cache.pop(name, None)
        return self._column(name)

    def _delete_column(self, name: str) -> None:
        self._check_writable()
        if name not in self._schemas():
            raise ColumnNotFound(name, list(self._schemas()))
        self._flush_batch()
        committed = name in self._snapshot.columns
        self._staging.drop_column(name, committed=committed)
        self._replaced.discard(name)
        if committed:
            self._staged_schemas[name] = None
        else:
            self._staged_schemas.pop(name, None)
        self._column_cache.pop(name, None)

    def add_ndarray_column(
        self,
        name: str,
        shape: int | Sequence[int] | None = None,
        dtype: Any = None,
        prototype: np.ndarray | None = None,
        variable_shape: bool = False,
        contains_subsamples: bool = False,
        *,
        backend: str | None = None,
        backend_options: Mapping[str, Any] | None = None,
        heterogeneous: bool = False,
    ) -> _ColumnBase:
        """A column of numpy arrays of one dtype and shape (the maximum shape if ``variable_shape``).

        ``heterogeneous=True`` (with no shape, dtype or prototype): every sample has its own dtype and
        shape, of any number of dimensions (the parameters of a model, in a nested column).
        """
        if heterogeneous:
            if shape is not None or dtype is not None or prototype is not None:
                raise ValueError(
                    f'column {name!r}: a heterogeneous column takes no shape, dtype or prototype '
                    '(each sample has its own)'
                )
            return self._add_column(
                name,
                self._make_schema(
                    'ndarray', contains_subsamples, None, None, True, 4096, backend, backend_options
                ),
            )
        if prototype is not None:
            if not isinstance(prototype, np.ndarray):
                raise TypeError(f'prototype must be a numpy.ndarray, got {type(prototype).__name__}')
            shape, dtype = prototype.shape, prototype.dtype
        if shape is None or dtype is None:
            raise ValueError(f'column {name!r}: give shape= and dtype=, or prototype= (an example array)')
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        try:
            shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f'column {name!r}: expected shape a tuple of ints, got {shape!r} instead'
            ) from err
        if any(s < 0 for s in shape):
            raise ValueError(f'column {name!r}: shape dimensions must be >= 0, got {shape}')
        try:
            dt = normalize_dtype(dtype)
        except ValueError as err:
            raise ValueError(f'column {name!r}: {err}') from err
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        return self._add_column(
            name,
            self._make_schema(
                'ndarray',
                contains_subsamples,
                dt.str,
                shape,
                bool(variable_shape),
                nbytes,
                backend,
                backend_options,
            ),
        )

    def add_str_column(
        self,
        name: str,
        contains_subsamples: bool = False,
        *,
        backend: str | None = None,
        backend_options: Mapping[str, Any] | None = None,
    ) -> _ColumnBase:
        """A column of str values (UTF-8)."""
        return self._add_column(
            name,
            self._make_schema('str', contains_subsamples, None, None, False, 0, backend, backend_options),
        )

    def add_bytes_column(
        self,
        name: str,
        contains_subsamples: bool = False,
        *,
        backend: str | None = None,
        backend_options: Mapping[str, Any] | None = None,
    ) -> _ColumnBase:
        """A column of bytes values."""
        return self._add_column(
            name,
            self._make_schema('bytes', contains_subsamples, None, None, False, 0, backend, backend_options),
        )

    def _make_schema(
        self,
        kind: str,
        nested: bool,
        dtype: str | None,
        shape: tuple[int, ...] | None,
        variable: bool,
        nbytes: int,
        backend: str | None,
        options: Mapping[str, Any] | None,
    ) -> ColumnSchema:
        configured = self._store.config_get('default_backend')
        code = (
            backend_code(backend)
            if backend is not None
            else default_backend_for(kind, nbytes, variable, configured)
        )
        cls = BACKEND_CLASSES[code]
        opts = cls.normalize_options(options) if options else cls.default_options(nbytes)
        inline = kind == 'ndarray' and not variable and nbytes <= INLINE_VALUE_BYTES
        return ColumnSchema(kind, 'nested' if nested else 'flat', dtype, shape, variable, code, opts, inline)

    # ------------------------------------------------------------------ staging reads

    def _staged(self, skey: bytes) -> bytes | None:
        v = self._batch.entries.get(skey)
        if v is not None:
            return v
        return self._staging.get(skey)

    def _data(self, digest: bytes) -> bytes | bytearray:
        blob = self._batch.blobs.get(digest)
        if blob is not None:
            return bytes(blob[1])
        return super()._data(digest)

    def _load_many(self, column: str, keys: Sequence[Key], refs: Sequence[bytes]) -> list[bytes | bytearray]:
        self._flush_batch()  # so that every staged sample has a location
        return super()._load_many(column, keys, refs)

    def _read_range(
        self, column: str, key: Any, digest: bytes, start: int, stop: int, ref: bytes = b''
    ) -> bytes:
        blob = self._batch.blobs.get(digest)
        if blob is not None:
            return bytes(memoryview(blob[1])[start:stop])
        return super()._read_range(column, key, digest, start, stop, ref)

    def _count(self, name: str) -> int:
        self._flush_batch()
        base = 0 if name in self._replaced else super()._count(name)
        return base + self._staging.count_delta(name)

    def _staging_has_column(self, name: str) -> bool:
        prefix = column_prefix(name)
        return next(self._staging.iter_prefix(prefix), None) is not None or bool(
            [k for k in self._batch.entries if k.startswith(prefix)]
        )

    def _refs_many(self, column: str, kencs: Sequence[bytes]) -> list[bytes | None]:
        self._check_open()
        prefix = column_prefix(column)
        self._flush_batch()
        staged = self._staging.get_many([prefix + k for k in kencs])
        nodes, root = self._store.nodes, self._root(column)
        out: list[bytes | None] = []
        for k in kencs:
            v = staged.get(prefix + k)
            if v is not None:
                out.append(v[1:] if v[:1] == SET else None)
            else:
                out.append(tree_get(nodes, root, k))
        return out

    # ------------------------------------------------------------------ staging writes

    def _stage(self, column: str, skey: bytes, value: bytes, prepared: Any, typesize: int) -> None:
        batch = self._batch
        batch.entries[skey] = value
        if prepared is not None and prepared.digest and prepared.digest not in batch.blobs:
            batch.blobs[prepared.digest] = (column, prepared.data, typesize)
            batch.pending_bytes += len(prepared.data)
        if self._batch_depth == 0 or batch.pending_bytes >= 256 << 20:
            self._flush_batch()

    def _stage_many(
        self, column: str, entries: list[tuple[bytes, bytes]], prepared: list[Any], typesize: int
    ) -> None:
        """Stage many entries at once (the bulk path of update_batch)."""
        batch = self._batch
        batch.entries.update(entries)
        blobs = batch.blobs
        for p in prepared:
            if p.digest and p.digest not in blobs:
                blobs[p.digest] = (column, p.data, typesize)
                batch.pending_bytes += len(p.data)
        if self._batch_depth == 0 or batch.pending_bytes >= 256 << 20:
            self._flush_batch()

    def _enter_batch(self) -> None:
        self._check_writable()
        self._batch_depth += 1

    def _exit_batch(self) -> None:
        self._batch_depth = max(0, self._batch_depth - 1)
        if self._batch_depth == 0 and not self._closed:
            self._flush_batch()

    def _flush_batch(
        self, meta: dict[bytes, bytes] | None = None, schemas: dict[str, bytes] | None = None
    ) -> None:
        if not self._batch.entries and not self._batch.blobs and not meta and not schemas:
            return
        all_schemas = self._schemas()
        self._staging.flush(
            self._batch,
            schema_of=lambda name: all_schemas[name],
            was_present=self._in_base,
            schema_changes=schemas,
            meta_changes=meta,
        )
        if meta:
            self._meta_dirty = True

    def _in_base(self, column: str, kencs: list[bytes]) -> list[bool]:
        root = self._root(column)
        if root == EMPTY_ROOT:
            return [False] * len(kencs)
        nodes = self._store.nodes
        return [tree_get(nodes, root, k) is not None for k in kencs]

    # ------------------------------------------------------------------ commit, reset, close

    def commit(self, commit_message: str, *, properties: Mapping[str, Any] | None = None) -> str:
        """Commit everything staged; returns the new commit's digest.

        ``properties``: key -> bool/int/float/str recorded on this commit alone (experiment parameters,
        metrics); read back with ``checkout.commit_properties``. With properties, a commit is made even
        if nothing is staged.
        """
        self._check_writable()
        if not isinstance(commit_message, str) or not commit_message.strip():
            raise ValueError('a commit needs a non-empty message')
        props = normalize_properties(properties)
        self._flush_batch()
        try:
            digest = commit_staging(
                self._store, self._staging, commit_message, self._author, self._email, properties=props
            )
        except NothingToCommit:
            self._reload_staging_state()  # entries that changed nothing were dropped
            raise
        self._commit = digest
        self._snapshot = self._store.objects.snapshot(digest)
        self._staged_schemas = {}
        self._replaced = set()
        self._meta_dirty = False
        self._column_cache.clear()
        return digest

    # ------------------------------------------------------------------ diff and merge (issue 3)

    @property
    def diff(self) -> WriterCheckoutDiff:
        """Also ``co.diff.staged()`` (staged changes against the base) and ``co.diff.status()``."""
        return WriterCheckoutDiff(self)

    def merge(self, message: str, dev_branch: str, *, strategy: str | None = None) -> str:
        """Merge ``dev_branch`` (or a tag or commit) into this checkout's branch; returns the new head.

        Fast-forwards when possible, else makes a merge commit (see ``hangarfs.engine.merge``).
        Needs a clean staging area; conflicts raise MergeConflictError unless ``strategy`` is
        'ours' or 'theirs'.
        """
        self._check_writable()
        self._flush_batch()
        assert self._branch is not None
        result = merge_into_branch(
            self._store,
            self._staging,
            master_branch=self._branch,
            dev_ref=dev_branch,
            message=message,
            author=self._author,
            email=self._email,
            strategy=strategy,
        )
        self._commit = result.commit
        self._snapshot = self._store.objects.snapshot(result.commit)
        self._staged_schemas = {}
        self._replaced = set()
        self._meta_dirty = False
        self._column_cache.clear()
        return result.commit

    # ------------------------------------------------------------------ (end of issue 3)

    def reset_staging_area(self, *, force: bool = False) -> str:
        """Drop every staged change and return to the branch head (``force=True`` when there are any)."""
        self._check_writable()
        self._flush_batch()
        if not force and has_staged_changes(self._store, self._staging):
            raise StagingDirty(
                'the staging area holds changes; reset_staging_area(force=True) discards them for good'
            )
        info = self._staging.info()
        head = self._store.refs.branch_head(self._branch or info.branch) or ''
        self._staging.clear(info.branch, head, info.generation + 1)
        self._commit = head
        self._snapshot = self._store.objects.snapshot(head)
        self._staged_schemas = {}
        self._replaced = set()
        self._meta_dirty = False
        self._column_cache.clear()
        return head

    def _reload_staging_state(self) -> None:
        """Re-read what this writer caches of the staging area (after it was cleared underneath)."""
        self._staged_schemas = self._staging.schemas()
        self._replaced = self._staging.replaced()
        self._meta_dirty = bool(self._staging.meta())
        self._column_cache.clear()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._batch_depth = 0
            self._flush_batch()
        finally:
            self._session.close()
            super().close()
