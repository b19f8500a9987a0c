"""Fetching history from a remote: commits, snapshots, tree nodes and tags, never sample data.

``fetch(store, 'origin', ['master'])`` reads the remote's refs, downloads the commit objects this
repository lacks and the metadata packs it has not cached (``metacache``), then walks every new
commit's trees from the snapshot down, checking each object against its digest and skipping every
subtree already held here. It writes, in **one** synced transaction: the new objects, a placeholder
location (backend ``50``, naming the remote) for every sample that has no location here, the commit
records, the remote-tracking branches (``origin/master``) and the tags that point into what was
fetched. A fetch killed at any instant therefore leaves either nothing or everything: a commit is
never visible before every object under it is stored, so "an object here" always means "its whole
subtree is here" (the walk relies on it).

Commit objects are checked too: each must hash to its name, and its parents must be here or on the
remote. A remote that names an object it does not hold, or holds a damaged one, raises
RemoteCorrupt naming it, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hangarfs.backends.remote import remote_location
from hangarfs.backends.remote_repo import RemoteRepo
from hangarfs.engine.records import DIGEST_SIZE, CommitRecord, Snapshot, TagRecord, digest_of
from hangarfs.engine.refs import tag_ref
from hangarfs.engine.remote.config import cache_dir, connect
from hangarfs.engine.remote.metacache import MetaCache, MetaObjects
from hangarfs.engine.remote.progress import NO_PROGRESS, Progress
from hangarfs.engine.remote.tracking import set_tracking, tracking_heads, tracking_name
from hangarfs.engine.remote.walk import leaf_values, snapshot_roots, walk_raw
from hangarfs.engine.samples import SampleCodec
from hangarfs.engine.store import RepoStore
from hangarfs.engine.tree import is_leaf, leaf_value_block
from hangarfs.errors_remote import RemoteBranchNotFound, RemoteCorrupt, RemoteObjectNotFound


@dataclass(frozen=True)
class FetchReport:
    """What a fetch did: the remote-tracking branches it moved (name -> (old, new)), the commits and
    objects it stored, the samples it learned of (only on the remote: placeholders), the bytes it
    downloaded, the tags it added, and local tags it left alone though the remote's differ."""

    remote: str
    branches: dict[str, tuple[str | None, str]]
    commits: int = 0
    objects: int = 0
    samples: int = 0
    bytes: int = 0
    tags: tuple[str, ...] = ()
    tag_conflicts: tuple[str, ...] = ()

    @property
    def tracking_branches(self) -> list[str]:
        return [tracking_name(self.remote, b) for b in self.branches]


@dataclass
class Ingest:
    """The objects and samples new commits bring, gathered before anything is stored."""

    store: RepoStore
    source: MetaObjects
    objects: dict[bytes, bytes] = field(default_factory=dict)
    samples: dict[bytes, int] = field(default_factory=dict)  # digest -> nbytes, samples seen here
    fixed_blocks: dict[int, list[bytes]] = field(default_factory=dict)  # nbytes -> digests end to end

    def known(self, digest: bytes) -> bool:
        return digest in self.objects or self.store.objects.contains(digest)

    def known_many(self, digests: list[bytes]) -> set[bytes]:
        """Those of ``digests`` held here or gathered already (one LMDB transaction)."""
        out = {d for d in digests if d in self.objects}
        rest = [d for d in digests if d not in out]
        if rest:
            out.update(self.store.history_table('objects').get_many(rest))
        return out

    def load(self, digest: bytes, what: str = 'tree node') -> bytes:
        data = self.objects.get(digest)
        if data is None:  # a fetch takes most objects from the remote's packs: look there first
            data = self.source.get(digest) or self.store.objects.get(digest, what)
        if data is None:
            raise RemoteCorrupt(
                f'{self.source.cache.directory}',
                f'the remote names {what} {digest.hex()}, which none of its metadata packs holds',
            )
        return data

    def add_commit(self, record: CommitRecord) -> None:
        snap_digest = bytes.fromhex(record.snapshot)
        if self.known(snap_digest):
            return  # a snapshot here has its whole tree here
        data = self.load(snap_digest, 'snapshot')
        try:
            snapshot = Snapshot.from_bytes(data)
        except (ValueError, KeyError) as err:
            raise RemoteCorrupt(f'snapshot {record.snapshot}', f'does not decode: {err}') from err
        self.objects[snap_digest] = data
        for column, root in snapshot_roots(snapshot):
            if column is None:
                self._walk(root, None, nested=False)
            else:
                state = snapshot.columns[column]
                self._walk(root, SampleCodec(column, state.schema), nested=state.schema.nested)

    def _walk(self, root: bytes, codec: SampleCodec | None, *, nested: bool) -> None:
        if self.known(root):
            return
        fixed = codec is not None and codec.kind == 'ndarray' and not codec.variable and not codec.inline
        blocks: list[bytes] = []
        inner_roots: list[bytes] = []
        for d, data in walk_raw(self.load, root, self.known_many):
            self.objects[d] = data
            if codec is None or codec.inline or not is_leaf(data):
                continue
            if nested:
                inner_roots.extend(v[:32] for v in leaf_values(d, data))
                continue
            if fixed:  # the refs are the digests, end to end: no object per sample
                width, _, block = leaf_value_block(data)
                if width == DIGEST_SIZE:
                    blocks.append(block)
                    continue
            nbytes = codec.nbytes_of
            for ref in leaf_values(d, data):
                self.samples[ref[:32]] = nbytes(ref)
        if blocks and codec is not None:
            self.fixed_blocks.setdefault(codec.fixed_nbytes, []).append(b''.join(blocks))
        for inner in inner_roots:
            self._walk(inner, codec, nested=False)

    def placeholders(self, remote_name: str) -> Iterator[list[tuple[bytes, bytes]]]:
        """Sorted ``(digest, placeholder location)`` pairs of every sample seen, a group at a time."""
        by_size: dict[int, list[bytes]] = {}
        for d, n in self.samples.items():
            by_size.setdefault(n, []).append(d)
        for n, blocks in self.fixed_blocks.items():
            loc = remote_location(remote_name, n)
            yield [(d, loc) for d in sorted_unique_digests(b''.join(blocks))]
        for n, digests in by_size.items():
            loc = remote_location(remote_name, n)
            yield [(d, loc) for d in sorted(digests)]

    @property
    def sample_count(self) -> int:
        return len(self.samples) + sum(len(b) // DIGEST_SIZE for bs in self.fixed_blocks.values() for b in bs)


def sorted_unique_digests(joined: bytes) -> list[bytes]:
    """The distinct 32-byte digests laid end to end in ``joined``, sorted (numpy: no Python compare)."""
    if not joined:
        return []
    rows = np.frombuffer(joined, dtype='>u8').reshape(-1, 4)
    rows = rows[np.lexsort((rows[:, 3], rows[:, 2], rows[:, 1], rows[:, 0]))]
    keep = np.ones(len(rows), bool)
    keep[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    raw = np.ascontiguousarray(rows[keep]).tobytes()
    return [raw[i : i + DIGEST_SIZE] for i in range(0, len(raw), DIGEST_SIZE)]


def _download_commits(
    store: RepoStore, remote: RemoteRepo, heads: Sequence[str]
) -> list[tuple[str, bytes, CommitRecord]]:
    """The commits reachable from ``heads`` that are not here, parents first, each checked."""
    listed = [c for c in remote.list_commits() if not store.objects.has_commit(c)]
    try:
        bodies = remote.get_commits(listed)
    except RemoteObjectNotFound as err:
        raise RemoteCorrupt(err.url, 'a listed commit object vanished while it was read') from err
    records: dict[str, tuple[bytes, CommitRecord]] = {}
    for cid, body in bodies.items():
        where = remote.store.object_url(f'commits/{cid}')
        if digest_of(body).hex() != cid:
            raise RemoteCorrupt(where, 'the commit object does not hash to its name: damaged')
        try:
            records[cid] = (body, CommitRecord.from_bytes(body))
        except (ValueError, KeyError) as err:
            raise RemoteCorrupt(where, f'not a commit record ({err})') from err
    order: list[tuple[str, bytes, CommitRecord]] = []
    done: set[str] = set()
    for head in heads:
        stack: list[tuple[str, bool]] = [(head, False)]
        while stack:
            cid, expanded = stack.pop()
            if cid in done or store.objects.has_commit(cid):
                continue
            if cid not in records:
                raise RemoteCorrupt(
                    remote.store.object_url(f'commits/{cid}'),
                    'the remote names this commit (as a branch head or a parent) but does not hold it',
                )
            body, rec = records[cid]
            if expanded:
                done.add(cid)
                order.append((cid, body, rec))
                continue
            stack.append((cid, True))
            stack.extend((p, False) for p in rec.parents if p not in done)
    return order


def fetch(
    store: RepoStore,
    remote_name: str,
    branches: Sequence[str] | None = None,
    *,
    progress: Progress = NO_PROGRESS,
    remote: RemoteRepo | None = None,
) -> FetchReport:
    """Fetch ``branches`` of ``remote_name`` (all of them when None); see the module docstring."""
    own = remote is None
    remote = remote or connect(store, remote_name)
    try:
        snap = remote.read_refs()
        if branches is None:
            selected = dict(snap.branches)
        else:
            selected = {}
            for b in branches:
                if b not in snap.branches:
                    raise RemoteBranchNotFound(remote.url, remote_name, b, list(snap.branches))
                selected[b] = snap.branches[b]
        heads = list(dict.fromkeys(selected.values()))
        missing = [h for h in heads if not store.objects.has_commit(h)]
        local_tags = store.refs.list('tag')
        new_tags = {n: t for n, t in snap.tags.items() if n not in local_tags}
        meta = MetaCache(cache_dir(store, remote_name) / 'meta')
        nbytes = 0
        if missing or any(not store.objects.contains(bytes.fromhex(t)) for t in new_tags.values()):
            nbytes = meta.sync(remote, progress)
        commits = _download_commits(store, remote, missing) if missing else []
        with meta.open() as source:
            ingest = Ingest(store, source)
            for _, _, rec in commits:
                ingest.add_commit(rec)
            fetched = {cid for cid, _, _ in commits}
            tags, conflicts = _tags_to_add(store, ingest, snap.tags, local_tags, fetched)
            old = tracking_heads(store, remote_name)
            with store.history.write() as txn:
                store.objects.put_many(ingest.objects.items(), txn=txn)
                for pairs in ingest.placeholders(remote_name):
                    store.history_table('locations').put_many(pairs, txn=txn, overwrite=False)
                for cid, body, _ in commits:
                    store.objects.add_commit(cid, body, txn=txn)
                set_tracking(store, remote_name, selected, txn=txn)
                for name, target in tags.items():
                    if store.refs.get(tag_ref(name), txn=txn) is None:  # not made meanwhile by a writer
                        store.refs.add_if_new(tag_ref(name), target, txn=txn)
        return FetchReport(
            remote_name,
            {b: (old.get(b), c) for b, c in selected.items()},
            commits=len(commits),
            objects=len(ingest.objects),
            samples=ingest.sample_count,
            bytes=nbytes,
            tags=tuple(sorted(tags)),
            tag_conflicts=tuple(conflicts),
        )
    finally:
        if own:
            remote.close()


def _tags_to_add(
    store: RepoStore,
    ingest: Ingest,
    remote_tags: Mapping[str, str],
    local_tags: dict[str, str],
    fetched: set[str],
) -> tuple[dict[str, str], list[str]]:
    """The remote's tags that name commits here (or just fetched) and that this repository lacks;
    and the names of local tags that differ from the remote's (kept as they are)."""
    add: dict[str, str] = {}
    conflicts: list[str] = []
    for name, target in remote_tags.items():
        if name in local_tags:
            if local_tags[name] != target:
                conflicts.append(name)
            continue
        digest = bytes.fromhex(target)
        if store.objects.has_commit(target) or target in fetched:
            add[name] = target  # a lightweight tag: names a commit
            continue
        data = ingest.objects.get(digest) or store.objects.get(digest, 'tag') or ingest.source.get(digest)
        if data is None or data[:1] != b'T':
            continue  # names something this fetch did not bring (a branch not fetched): skip it
        record = TagRecord.from_bytes(data)
        if store.objects.has_commit(record.commit) or record.commit in fetched:
            ingest.objects[digest] = data
            add[name] = target
    return add, conflicts
