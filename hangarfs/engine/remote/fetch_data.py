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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hangarfs.backends.codec import fsync_paths
from hangarfs.backends.codes import CODE_SIZE, BackendCode
from hangarfs.backends.remote_repo import RemoteRepo
from hangarfs.engine.keys import Key, encode_key
from hangarfs.engine.records import DIGEST_SIZE, EMPTY_ROOT, ColumnSchema
from hangarfs.engine.remote.config import connect, get_remote
from hangarfs.engine.remote.progress import NO_PROGRESS, Progress
from hangarfs.engine.remote.walk import RawNodes, nested_inner_roots, tree_walk
from hangarfs.engine.samples import SampleCodec
from hangarfs.engine.store import RepoStore
from hangarfs.engine.tree import Leaf, tree_get, tree_items
from hangarfs.errors import ColumnNotFound, RemoteCorrupt, SampleNotFound


@dataclass
class Wanted:
    """Samples to fetch: digest -> (column, ref), the first column that names a digest."""

    samples: dict[bytes, tuple[str, bytes]] = field(default_factory=dict)
    schemas: dict[str, ColumnSchema] = field(default_factory=dict)

    def add(self, column: str, schema: ColumnSchema, refs: Iterable[bytes]) -> None:
        if SampleCodec(column, schema).inline:
            return
        self.schemas.setdefault(column, schema)
        for ref in refs:
            self.samples.setdefault(ref[:DIGEST_SIZE], (column, ref))


@dataclass(frozen=True)
class FetchDataReport:
    """What a data fetch did: commits walked, samples and bytes stored, samples already here, and
    samples left out by ``max_num_bytes``."""

    commits: tuple[str, ...]
    samples: int = 0
    bytes: int = 0
    already_local: int = 0
    left_out: int = 0


def _leaves(nodes: RawNodes, root: bytes) -> Iterator[Leaf]:
    for _, _, node in tree_walk(nodes.load, root):
        if isinstance(node, Leaf):
            yield node


def _column_refs(nodes: RawNodes, schema: ColumnSchema, root: bytes) -> Iterator[bytes]:
    if schema.nested:
        for _, inner in nested_inner_roots(_leaves(nodes, root)):
            for leaf in _leaves(nodes, inner):
                yield from leaf.values
        return
    for leaf in _leaves(nodes, root):
        yield from leaf.values


def select_columns(store: RepoStore, commits: Sequence[str], column_names: Sequence[str] | None) -> Wanted:
    """Every sample of ``column_names`` (all columns when None) in ``commits``."""
    wanted = Wanted()
    nodes = RawNodes(store.nodes.raw)
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
            wanted.add(name, state.schema, _column_refs(nodes, state.schema, state.root))
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
    digests = list(wanted.samples)
    remote = BackendCode.REMOTE.prefix
    out: list[bytes] = []
    here = 0
    for i in range(0, len(digests), 65536):
        chunk = digests[i : i + 65536]
        found = store.locations(chunk)
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
            column, _ = wanted.samples[absent[0]]
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
        stored = [0, 0]
        codecs = {name: SampleCodec(name, schema) for name, schema in wanted.schemas.items()}
        try:
            for batch in remote.read_batches(tables.items()):
                _store_batch(store, remote, wanted, codecs, batch.pack, list(batch), stored)
                progress.advance(batch.nbytes)
        finally:
            progress.end()
        return FetchDataReport(tuple(commits), stored[0], stored[1], here, left_out)
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


def _store_batch(
    store: RepoStore,
    remote: RemoteRepo,
    wanted: Wanted,
    codecs: dict[str, SampleCodec],
    pack: str,
    blobs: list[tuple[bytes, memoryview]],
    stored: list[int],
) -> None:
    """Check every blob of one pack read against its content digest, then store them all."""
    by_column: dict[str, list[tuple[bytes, memoryview]]] = {}
    where = remote.store.object_url(pack)
    for digest, data in blobs:
        column, ref = wanted.samples[digest]
        codec = codecs[column]
        if len(data) != codec.nbytes_of(ref) or codec.digest_of_data(data, ref) != digest:
            raise RemoteCorrupt(
                where,
                f'a sample of column {column!r} does not hash to its digest: the remote holds damaged '
                'or forged data',
                digest=digest,
            )
        by_column.setdefault(column, []).append((digest, data))
    pairs: list[tuple[bytes, bytes]] = []
    files: list[str] = []
    for column, items in by_column.items():
        schema = wanted.schemas[column]
        backend = store.backends.get(schema.backend)
        result = backend.write_batch(
            [d for _, d in items], options=schema.backend_options, typesize=codecs[column].typesize
        )
        files.extend(result.files)
        pairs.extend(zip((d for d, _ in items), result.locations))
        stored[0] += len(items)
        stored[1] += sum(len(d) for _, d in items)
    fsync_paths(files)  # the files, then their directories: before any synced location names them
    store.history_table('locations').put_many(sorted(pairs))
