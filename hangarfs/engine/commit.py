"""Turning the staging area into a commit, all or nothing.

1. Pack each column's buffered small writes into a collection file when there are enough of them
   (files are fsynced before anything durable names them).
2. Apply the overlay to the base commit's trees; only the touched paths produce new nodes.
3. One synced history transaction stores the nodes, the inline sample values, the snapshot and the
   commit, moves the branch by compare-and-swap from the base commit, and records that this staging
   generation is consumed.
4. The staging area is cleared. If the process dies between 3 and 4, the next writer sees that the
   generation was consumed and clears it then (see ``recover_staging``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from hangarfs.backends.codec import decode_varint, encode_varint
from hangarfs.engine.keys import decode_key
from hangarfs.engine.properties import PropertyValue
from hangarfs.engine.records import DIGEST_SIZE, EMPTY_ROOT, ColumnState, CommitRecord, Digest, Snapshot
from hangarfs.engine.refs import branch_ref
from hangarfs.engine.staging import PACK_MIN_BYTES, SET, TOMBSTONE, StagingArea, column_prefix
from hangarfs.engine.store import RepoStore, is_placeholder
from hangarfs.engine.tree import tree_get
from hangarfs.engine.tree_build import tree_update
from hangarfs.errors import NothingToCommit

PRIME_LIMIT = 4096  # new tree nodes decoded into the cache right after a commit


def recover_staging(store: RepoStore, staging: StagingArea) -> None:
    """Finish a commit whose last step (clearing the staging area) was cut off."""
    info = staging.info()
    consumed = int(store.config_get('staging_consumed', '-1'))
    if info.generation <= consumed:
        head = store.refs.branch_head(info.branch) or ''
        staging.clear(info.branch, head, consumed + 1)


def build_snapshot(
    store: RepoStore, staging: StagingArea, base: Snapshot
) -> tuple[Snapshot, dict[bytes, bytes]]:
    """The snapshot the staging area describes, and the new tree nodes it needs."""
    columns = dict(base.columns)
    replaced = staging.replaced()
    for name, schema in staging.schemas().items():
        if schema is None:
            columns.pop(name, None)
        elif name in columns and name not in replaced:
            columns[name] = ColumnState(schema, columns[name].root, columns[name].count)
        else:
            columns[name] = ColumnState(schema, EMPTY_ROOT, 0)
    nodes: dict[bytes, bytes] = {}
    for name in sorted(staging.staged_columns()):
        state = columns.get(name)
        if state is None:
            continue
        if state.schema.nested:
            entries = staging.iter_prefix(column_prefix(name))
            root, count = _apply_nested(store, state.root, state.count, entries, nodes)
        else:
            upd = tree_update(store.nodes, state.root, staging.changes(column_prefix(name)))
            nodes.update(upd.nodes)
            root, count = upd.root, state.count + upd.delta
        columns[name] = ColumnState(state.schema, root, count)
    meta_root, meta_count = base.metadata_root, base.metadata_count
    meta = staging.meta()
    if meta:
        upd = tree_update(store.nodes, meta_root, sorted(meta.items()))
        nodes.update(upd.nodes)
        meta_root, meta_count = upd.root, meta_count + upd.delta
    return Snapshot(columns, meta_root, meta_count), nodes


def _apply_nested(
    store: RepoStore, outer_root: Digest, outer_count: int, entries: object, nodes: dict[bytes, bytes]
) -> tuple[Digest, int]:
    """Apply staged nested entries: group by sample key, update each sample's inner tree."""
    groups: dict[bytes, tuple[bool, list[tuple[bytes, bytes | None]]]] = {}
    for rest, value in entries:  # type: ignore[attr-defined]
        _, end = decode_key(rest)
        kenc, senc = rest[:end], rest[end:]
        dead, subs = groups.get(kenc, (False, []))
        if not senc:
            dead = value[:1] == TOMBSTONE
        else:
            subs.append((senc, value[1:] if value[:1] == SET else None))
        groups[kenc] = (dead, subs)
    outer_changes: list[tuple[bytes, bytes | None]] = []
    delta = 0
    for kenc, (dead, subs) in sorted(groups.items()):
        old = tree_get(store.nodes, outer_root, kenc)
        old_root = Digest(old[:DIGEST_SIZE]) if old is not None else EMPTY_ROOT
        old_count = decode_varint(old, DIGEST_SIZE)[0] if old is not None else 0
        start_root, start_count = (EMPTY_ROOT, 0) if dead else (old_root, old_count)
        upd = tree_update(store.nodes, start_root, subs)
        nodes.update(upd.nodes)
        count = start_count + upd.delta
        if count > 0:
            outer_changes.append((kenc, upd.root + encode_varint(count)))
            delta += 0 if old is not None else 1
        else:
            outer_changes.append((kenc, None))
            delta -= 1 if old is not None else 0
    upd = tree_update(store.nodes, outer_root, outer_changes)
    nodes.update(upd.nodes)
    return upd.root, outer_count + delta


def write_commit(
    store: RepoStore,
    *,
    branch: str,
    expected_head: str,
    parents: Sequence[str],
    snapshot: Snapshot,
    nodes: dict[bytes, bytes],
    message: str,
    author: str,
    email: str,
    inline_locations: Sequence[tuple[bytes, bytes]] = (),
    staging_generation: int | None = None,
    properties: Mapping[str, PropertyValue] | None = None,
) -> str:
    """Store a new commit and move ``branch`` from ``expected_head`` to it, in one synced transaction."""
    snap_bytes = snapshot.to_bytes()
    snap_digest = snapshot.digest
    record = CommitRecord(
        tuple(parents), snap_digest.hex(), author, email, time.time_ns(), message, dict(properties or {})
    )
    rec_bytes = record.to_bytes()
    commit = record.digest
    with store.history.write() as txn:
        if nodes:
            store.objects.put_many(nodes.items(), txn=txn)
        store.objects.put(snap_digest, snap_bytes, txn=txn)
        store.objects.add_commit(commit, rec_bytes, txn=txn)
        if inline_locations:
            table = store.history_table('locations')
            table.put_many(inline_locations, txn=txn, overwrite=False)
            # ... but local bytes replace a remote placeholder (the sample was only on a remote)
            held = table.get_many([d for d, _ in inline_locations], txn=txn)
            table.put_many([(d, loc) for d, loc in inline_locations if is_placeholder(held[d])], txn=txn)
        store.refs.set_if_equals(branch_ref(branch), expected_head, commit, txn=txn)
        if staging_generation is not None:
            store.history_table('config').put(b'staging_consumed', str(staging_generation).encode(), txn=txn)
    if len(nodes) <= PRIME_LIMIT:  # a bulk commit's nodes are cheaper to load when needed
        store.nodes.prime(nodes)
    return commit


def commit_staging(
    store: RepoStore,
    staging: StagingArea,
    message: str,
    author: str,
    email: str,
    properties: Mapping[str, PropertyValue] | None = None,
) -> str:
    """Commit the staging area. With ``properties`` (already normalized) a commit is made even when
    nothing is staged: it records the properties on an unchanged snapshot."""
    info = staging.info()
    if not staging.is_dirty() and not properties:
        raise NothingToCommit(info.branch)
    base = store.objects.snapshot(info.base)
    schemas = {**{n: s.schema for n, s in base.columns.items()}, **staging.schemas()}
    for column in staging.buffered_columns():
        schema = schemas.get(column)
        if schema is not None and staging.buffered_bytes(column) >= PACK_MIN_BYTES:
            staging.pack(column, schema)
    snapshot, nodes = build_snapshot(store, staging, base)
    if snapshot.digest == base.digest and not properties:  # staged changes that cancel out
        staging.clear(info.branch, info.base, info.generation + 1)  # they hold nothing worth keeping
        raise NothingToCommit(info.branch)
    commit = write_commit(
        store,
        branch=info.branch,
        expected_head=info.base,
        parents=(info.base,) if info.base else (),
        snapshot=snapshot,
        nodes=nodes,
        message=message,
        author=author,
        email=email,
        inline_locations=staging.inline_locations(),
        staging_generation=info.generation,
        properties=properties,
    )
    staging.clear(info.branch, commit, info.generation + 1)
    staging.compact_if_large()
    return commit
