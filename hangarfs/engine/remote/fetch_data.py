"""Fetching sample data from a remote: whole commits, some columns, some keys, or up to a budget.

The samples wanted are found by walking the commits' trees (``select_*``); those with a local
location are skipped. The remote's index (one LIST of ``index/`` and the index files not cached)
says which pack holds each; the packs are read ``concurrency`` at a time, by coalesced byte ranges
(a whole column is one read per pack), and every blob is checked twice before anything is stored:
its pack checksum (``pack_reads``) and its **blake2b content digest** (recomputed from the bytes and
the sample's dtype and shape). A blob that fails either raises RemoteCorrupt naming the pack and the
blob, and nothing from that pack read is stored.

The checked bytes of one pack read go into one new data file of the column's own backend, with the
column's options (what the pusher chose), fsynced; then one synced transaction points the samples'
locations at it, replacing their remote placeholders. A fetch killed at any instant leaves at worst a
data file no location names (never read); what was stored before stays valid.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hangarfs.backends.codec import fsync_paths
from hangarfs.backends.codes import CODE_SIZE, BackendCode
from hangarfs.backends.pack_reads import BlobBatch
from hangarfs.backends.remote_repo import RemoteRepo
from hangarfs.engine.keys import Key, encode_key
from hangarfs.engine.records import DIGEST_SIZE, EMPTY_ROOT, ColumnSchema
from hangarfs.engine.remote.config import connect, get_remote
from hangarfs.engine.remote.progress import NO_PROGRESS, Progress
from hangarfs.engine.remote.walk import LocalNodes, RawNodes, leaf_values, walk_raw
from hangarfs.engine.samples import SampleCodec
from hangarfs.engine.store import RepoStore
from hangarfs.engine.tree import is_leaf, leaf_value_block, tree_get, tree_items
from hangarfs.errors import ColumnNotFound, SampleNotFound
from hangarfs.errors_remote import RemoteCorrupt


@dataclass
class Wanted:
    """Samples to fetch: digest -> the first column that names it, and the refs of those whose ref
    is more than the digest (variable shapes, str, bytes); the others' refs are their digests."""

    columns: dict[bytes, str] = field(default_factory=dict)
    refs: dict[bytes, bytes] = field(default_factory=dict)
    schemas: dict[str, ColumnSchema] = field(default_factory=dict)

    def add(self, column: str, schema: ColumnSchema, refs: Iterable[bytes]) -> None:
        if SampleCodec(column, schema).inline:
            return
        self.schemas.setdefault(column, schema)
        for ref in refs:
            d = ref[:DIGEST_SIZE]
            if d not in self.columns:
                self.columns[d] = column
                if len(ref) > DIGEST_SIZE:
                    self.refs[d] = ref

    def add_digests(self, column: str, schema: ColumnSchema, digests: list[bytes]) -> None:
        """Samples whose refs are their digests (a fixed-shape column), in bulk."""
        self.schemas.setdefault(column, schema)
        fresh = dict.fromkeys(digests, column)
        fresh.update(self.columns)  # a digest keeps the first column that named it
        self.columns = fresh

    def ref(self, digest: bytes) -> bytes:
        return self.refs.get(digest, digest)

    def __len__(self) -> int:
        return len(self.columns)


@dataclass(frozen=True)
class FetchDataReport:
    """What a data fetch did: commits walked, samples and bytes stored, samples already here, and
    samples left out by ``max_num_bytes``."""

    commits: tuple[str, ...]
    samples: int = 0
    bytes: int = 0
    already_local: int = 0
    left_out: int = 0


def _column_refs(store: RepoStore, codec: SampleCodec, root: bytes, wanted: Wanted) -> None:
    """Add every sample under ``root`` to ``wanted``: a fixed-shape column's digests in bulk."""
    nodes = LocalNodes(store)
    blocks: list[bytes] = []
    roots = [root]
    if codec.schema.nested:
        roots = []
        for d, data in walk_raw(nodes.load, root, nodes.prefetch):
            if is_leaf(data):
                roots.extend(v[:DIGEST_SIZE] for v in leaf_values(d, data))
    fixed = codec.kind == 'ndarray' and not codec.variable
    for r in roots:
        for d, data in walk_raw(nodes.load, r, nodes.prefetch):
            if not is_leaf(data):
                continue
            width, _, block = leaf_value_block(data) if fixed else (-1, 0, b'')
            if width == DIGEST_SIZE:
                blocks.append(block)
            else:
                wanted.add(codec.column, codec.schema, leaf_values(d, data))
    if blocks:
        joined = b''.join(blocks)
        digests = [joined[i : i + DIGEST_SIZE] for i in range(0, len(joined), DIGEST_SIZE)]
        wanted.add_digests(codec.column, codec.schema, digests)


def select_columns(store: RepoStore, commits: Sequence[str], column_names: Sequence[str] | None) -> Wanted:
    """Every sample of ``column_names`` (all columns when None) in ``commits``."""
    wanted = Wanted()
    seen_roots: set[bytes] = set()
    found: set[str] = set()
    for cid in commits:
        snap = store.objects.snapshot(cid)
        for name, state in sorted(snap.columns.items()):
            if column_names is not None and name not in column_names:
                continue
            found.add(name)
            if state.root in seen_roots or state.root == EMPTY_ROOT:
                continue
            seen_roots.add(state.root)
            codec = SampleCodec(name, state.schema)
            if not codec.inline:
                _column_refs(store, codec, state.root, wanted)
    for name in column_names or ():
        if name not in found:
            known = {n for c in commits for n in store.objects.snapshot(c).columns}
            raise ColumnNotFound(name, sorted(known))
    return wanted


def select_samples(store: RepoStore, commit: str, column: str, samples: Iterable[Any]) -> Wanted:
    """The samples of one column named by keys: ``key`` (a flat sample, or every subsample of a
    nested one), ``(key, subkey)``, ``(key, ...)`` or ``(key,)`` (every subsample), as Hangar takes."""
    snap = store.objects.snapshot(commit)
    state = snap.columns.get(column)
    if state is None:
        raise ColumnNotFound(column, sorted(snap.columns))
    nodes = RawNodes(store.nodes.raw)
    refs: list[bytes] = []
    for spec in samples:
        if not state.schema.nested:
            if isinstance(spec, tuple):
                raise TypeError(f'column {column!r} is flat: give keys, not {spec!r}')
            ref = tree_get(nodes, state.root, encode_key(spec))
            if ref is None:
                raise SampleNotFound(column, spec)
            refs.append(ref)
            continue
        key: Key
        sub: Any
        if isinstance(spec, tuple):
            if len(spec) not in (1, 2):
                raise ValueError(f'nested column {column!r}: give key, (key,), (key, ...) or (key, subkey)')
            key, sub = spec[0], (spec[1] if len(spec) == 2 else ...)
        else:
            key, sub = spec, ...
        outer = tree_get(nodes, state.root, encode_key(key))
        if outer is None:
            raise SampleNotFound(column, key)
        inner = outer[:DIGEST_SIZE]
        if sub is ...:
            refs.extend(v for _, v in tree_items(nodes, inner))
        else:
            ref = tree_get(nodes, inner, encode_key(sub))
            if ref is None:
                raise SampleNotFound(column, (key, sub))
            refs.append(ref)
    wanted = Wanted()
    wanted.add(column, state.schema, refs)
    return wanted


def _not_local(store: RepoStore, wanted: Wanted) -> tuple[list[bytes], int]:
    """The wanted digests with no local bytes (a remote placeholder or no location), and how many
    are here already."""
    digests = list(wanted.columns)
    remote = BackendCode.REMOTE.prefix
    out: list[bytes] = []
    here = 0
    for i in range(0, len(digests), 65536):
        chunk = digests[i : i + 65536]
        found = store.locations(sorted(chunk))  # sorted: the lookups walk the table in order
        for d in chunk:
            loc = found.get(d)
            if loc is None or loc[:CODE_SIZE] == remote:
                out.append(d)
            else:
                here += 1
    return out, here


def fetch_wanted(
    store: RepoStore,
    remote_name: str,
    wanted: Wanted,
    commits: Sequence[str],
    *,
    max_num_bytes: int | None = None,
    progress: Progress = NO_PROGRESS,
    remote: RemoteRepo | None = None,
) -> FetchDataReport:
    """Fetch the wanted samples not here yet; see the module docstring."""
    if remote is None:
        get_remote(store, remote_name)  # RemoteNotFound even when there is nothing to fetch
    todo, here = _not_local(store, wanted)
    if not todo:
        return FetchDataReport(tuple(commits), already_local=here)
    own = remote is None
    remote = remote or connect(store, remote_name)
    try:
        index = remote.known_digests()
        absent = index.missing(todo)
        if absent:
            column = wanted.columns[absent[0]]
            raise RemoteCorrupt(
                remote.url,
                f'its history names {len(absent)} sample(s) of column {column!r} (and maybe others) for '
                'which no index file names data: the remote is incomplete (run `hangarfs verify --remote`)',
                digest=absent[0],
            )
        tables = index.tables_for(todo)
        left_out = 0
        if max_num_bytes is not None:
            tables, left_out = _within_budget(tables, max_num_bytes)
        total = int(sum(int(t['length'].sum()) for t in tables.values()))
        progress.begin(f'fetch data from {remote_name}', total)
        writer = _Writer(store, wanted)
        try:
            for batch in remote.read_batches(tables.items()):
                writer.put(_checked(remote, wanted, writer.codecs, batch))
                progress.advance(batch.nbytes)
        finally:
            writer.close()
            progress.end()
        return FetchDataReport(tuple(commits), writer.samples, writer.bytes, here, left_out)
    finally:
        if own:
            remote.close()


def _within_budget(tables: dict[str, np.ndarray], budget: int) -> tuple[dict[str, np.ndarray], int]:
    """The entries that fit in ``budget`` bytes of sample data, pack by pack in offset order."""
    out: dict[str, np.ndarray] = {}
    used = 0
    left = 0
    for key in sorted(tables):
        table = np.sort(tables[key], order='offset')
        sizes = np.cumsum(table['length'].astype(np.int64)) + used
        fit = int(np.searchsorted(sizes, budget, 'right'))
        if fit:
            out[key] = table[:fit]
            used = int(sizes[fit - 1])
        left += len(table) - fit
    return out, left


Checked = dict[str, tuple[list[bytes], list[memoryview]]]


def _checked(remote: RemoteRepo, wanted: Wanted, codecs: dict[str, SampleCodec], batch: BlobBatch) -> Checked:
    """The blobs of one pack read grouped by column, every one checked against its content digest
    first (RemoteCorrupt names the pack and the blob; then nothing of the read is stored)."""
    out: Checked = {}
    columns, refs = wanted.columns, wanted.refs
    hashers: dict[str, tuple[Any, int]] = {}  # fixed-shape columns: a primed hasher, the size
    for digest, data in zip(batch.digests, batch.blobs()):
        column = columns[digest]
        fixed = hashers.get(column)
        if fixed is None and column not in out:
            codec = codecs[column]
            if codec.kind == 'ndarray' and not codec.variable:
                fixed = hashers[column] = (codec.digest_hasher(digest), codec.fixed_nbytes)
        if fixed is not None:
            h = fixed[0].copy()
            h.update(data)
            ok = len(data) == fixed[1] and h.digest() == digest
        else:
            codec = codecs[column]
            ref = refs.get(digest, digest)
            ok = len(data) == codec.nbytes_of(ref) and codec.digest_of_data(data, ref) == digest
        if not ok:
            raise RemoteCorrupt(
                remote.store.object_url(batch.pack),
                f'a sample of column {column!r} does not hash to its digest: the remote holds damaged '
                'or forged data',
                digest=digest,
            )
        group = out.get(column)
        if group is None:
            group = out[column] = ([], [])
        group[0].append(digest)
        group[1].append(data)
    return out


class _Writer:
    """Stores checked batches on a thread of its own (compression and fsync overlap the next read's
    checks): each batch into new data files of its columns' backends, fsynced, then one synced
    transaction of locations. An error is raised again by the next ``put`` or by ``close``."""

    def __init__(self, store: RepoStore, wanted: Wanted) -> None:
        self.store = store
        self.wanted = wanted
        self.codecs = {name: SampleCodec(name, schema) for name, schema in wanted.schemas.items()}
        self.samples = 0
        self.bytes = 0
        self._queue: queue.Queue[Checked | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name='hangarfs-fetch-writer', daemon=True)
        self._thread.start()

    def put(self, checked: Checked) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(checked)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (checked := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._store(checked)
                except BaseException as err:  # handed to the fetching thread
                    self._error = err

    def _store(self, checked: Checked) -> None:
        digests: list[bytes] = []
        locations: list[bytes] = []
        files: list[str] = []
        for column, (ds, blobs) in checked.items():
            schema = self.wanted.schemas[column]
            result = self.store.backends.get(schema.backend).write_batch(
                blobs, options=schema.backend_options, typesize=self.codecs[column].typesize
            )
            files.extend(result.files)
            digests.extend(ds)
            locations.extend(result.locations)
            self.samples += len(ds)
            self.bytes += sum(map(len, blobs))
        fsync_paths(files)  # the files, then their directories: before any synced location names them
        self.store.history_table('locations').put_many(sorted(zip(digests, locations)))
