"""Pushing a branch to a remote: only what the remote lacks, in the order that keeps it consistent.

``push(store, 'origin', 'master')``:

1. reads the remote refs (one GET) and refuses a push that is not a fast-forward of the remote
   branch (PushRejected: fetch, merge, push), unless ``force``;
2. lists the remote's commits (one LIST) and walks the branch's history back to them: those commits
   are what to send;
3. for each of them, diffs its trees against its first parent's (``walk.new_nodes``: cost follows the
   change) to find the new tree nodes, and the samples the new leaves name;
4. asks the remote's index which of those samples it holds (one LIST of ``index/`` and the index
   files not cached yet: never a request per object; packs an interrupted push left without an index
   are indexed first, from their footers, so they are re-used), reads the others from the local backends and
   uploads them as packs of one column each, in key order; then the tree nodes, snapshots and tag
   records as metadata packs; then the commit objects;
5. moves the remote refs by compare-and-swap. If another push moved *this* branch meanwhile, the
   push fails with "the remote branch moved: fetch, merge, push" and the remote keeps the other
   push's commits; if only other refs moved, it reads them again and retries.

Steps 4 and 5 are the remote's commit protocol (data -> index -> metadata -> commits -> refs), so a
push killed at any instant leaves a consistent remote, and pushing again re-uses every pack an index
names. Tags of the pushed history go along (a tag the remote has under another target is left as the
remote has it, and reported).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from hangarfs.backends.codes import CODE_SIZE, BackendCode
from hangarfs.backends.remote_refs import RefsSnapshot
from hangarfs.backends.remote_repo import RemoteRepo
from hangarfs.engine.history import is_ancestor, iter_ancestors
from hangarfs.engine.records import DIGEST_SIZE, EMPTY_ROOT, EMPTY_SNAPSHOT, Snapshot
from hangarfs.engine.refs import is_remote_branch_name
from hangarfs.engine.remote.config import connect
from hangarfs.engine.remote.progress import NO_PROGRESS, Progress
from hangarfs.engine.remote.tracking import set_tracking
from hangarfs.engine.remote.walk import LocalNodes, RawNodes, leaf_values, new_nodes, walk_raw
from hangarfs.engine.samples import SampleCodec
from hangarfs.engine.store import RepoStore
from hangarfs.engine.tree import Leaf, is_leaf, leaf_value_block, tree_get
from hangarfs.errors import DataNotLocal, RefNotFound
from hangarfs.errors_remote import PushRejected, RemoteRefMoved

#: Bytes a blob costs in a pack beyond its own: record header and footer entry.
PACK_OVERHEAD = 56 + 64
REFS_RETRIES = 10
READ_BATCH = 16384


@dataclass(frozen=True)
class PushReport:
    """What a push did. ``up_to_date``: the remote branch was there already (nothing sent)."""

    remote: str
    branch: str
    old_head: str | None
    new_head: str
    commits: int = 0
    samples: int = 0
    sample_bytes: int = 0
    samples_skipped: int = 0
    objects: int = 0
    tags: tuple[str, ...] = ()
    tag_conflicts: tuple[str, ...] = ()
    forced: bool = False

    @property
    def up_to_date(self) -> bool:
        return self.old_head == self.new_head and not self.tags


@dataclass
class Outgoing:
    """What the commits to send hold that their parents do not: objects, and samples per column."""

    objects: dict[bytes, bytes] = field(default_factory=dict)
    columns: dict[str, tuple[SampleCodec, dict[bytes, None]]] = field(default_factory=dict)

    def add_samples(self, codec: SampleCodec, leaves: list[Leaf]) -> None:
        if codec.inline:
            return
        leaves.sort(key=lambda leaf: leaf.keys[0] if leaf.keys else b'')  # key order: packs read well
        for leaf in leaves:
            self.add_refs(codec, leaf.values)

    def add_refs(self, codec: SampleCodec, refs: Iterable[bytes]) -> None:
        entry = self.columns.setdefault(codec.column, (codec, {}))
        entry[1].update(dict.fromkeys(ref[:32] for ref in refs))

    def add_digest_block(self, codec: SampleCodec, joined: bytes) -> None:
        """Digests laid end to end (a fixed-shape column's refs), in bulk."""
        entry = self.columns.setdefault(codec.column, (codec, {}))
        entry[1].update(dict.fromkeys(joined[i : i + 32] for i in range(0, len(joined), 32)))


def _outgoing(store: RepoStore, commits: list[str]) -> Outgoing:
    """The objects and samples ``commits`` (parents first) add to their first parents."""
    out = Outgoing()
    for cid in commits:
        rec = store.objects.commit(cid)
        snap = store.objects.snapshot(cid)
        parent = store.objects.snapshot(rec.parents[0]) if rec.parents else EMPTY_SNAPSHOT
        out.objects[bytes.fromhex(rec.snapshot)] = snap.to_bytes()
        _diff_snapshot(store, out, snap, parent)
    return out


def _whole_column(store: RepoStore, out: Outgoing, codec: SampleCodec, root: bytes) -> None:
    """Every node and sample of a flat column new to the remote: leaves in key order, a fixed-shape
    column's digests taken from the leaves' value blocks (no object per sample)."""
    local = LocalNodes(store)
    fixed = codec.kind == 'ndarray' and not codec.variable and not codec.inline
    blocks: list[bytes] = []
    for d, data in walk_raw(local.load, root, local.prefetch):
        out.objects[d] = data
        if codec.inline or not is_leaf(data):
            continue
        width, _, block = leaf_value_block(data) if fixed else (-1, 0, b'')
        if width == DIGEST_SIZE:
            blocks.append(block)
        else:
            if blocks:
                out.add_digest_block(codec, b''.join(blocks))
                blocks = []
            out.add_refs(codec, leaf_values(d, data))
    if blocks:
        out.add_digest_block(codec, b''.join(blocks))


def _diff_snapshot(store: RepoStore, out: Outgoing, snap: Snapshot, parent: Snapshot) -> None:
    nodes = RawNodes(store.nodes.raw)
    for name, state in sorted(snap.columns.items()):
        old = parent.columns.get(name)
        old_root = old.root if old is not None else EMPTY_ROOT
        codec = SampleCodec(name, state.schema)
        if old_root == EMPTY_ROOT and not state.schema.nested:
            _whole_column(store, out, codec, state.root)
            continue
        leaves: list[Leaf] = []
        for d, data, node in new_nodes(nodes.load, old_root, state.root):
            out.objects[d] = data
            if isinstance(node, Leaf):
                leaves.append(node)
        if not state.schema.nested:
            out.add_samples(codec, leaves)
            continue
        inner_leaves: list[Leaf] = []
        for leaf in leaves:
            for kenc, value in zip(leaf.keys, leaf.values):
                before = tree_get(nodes, old_root, kenc) if old_root != EMPTY_ROOT else None
                inner_old = before[:32] if before is not None else EMPTY_ROOT
                for d, data, node in new_nodes(nodes.load, inner_old, value[:32]):
                    out.objects[d] = data
                    if isinstance(node, Leaf):
                        inner_leaves.append(node)
        out.add_samples(codec, inner_leaves)
    for d, data, _ in new_nodes(nodes.load, parent.metadata_root, snap.metadata_root):
        out.objects[d] = data


def _blobs(
    store: RepoStore, column: str, digests: list[bytes], remote_name: str, sent: list[int]
) -> Iterator[tuple[bytes, bytes]]:
    """The local bytes of ``digests`` (in order); DataNotLocal for one this repository lacks."""
    remote_prefix = BackendCode.REMOTE.prefix
    it = iter(digests)
    while batch := list(itertools.islice(it, READ_BATCH)):
        found = store.locations(sorted(batch))  # sorted: the lookups walk the table in order
        locations = []
        for d in batch:
            loc = found.get(d)
            if loc is None or loc[:CODE_SIZE] == remote_prefix:
                where = 'stored nowhere here' if loc is None else 'stored only on a remote'
                raise DataNotLocal(
                    f'cannot push column {column!r}: sample {d.hex()[:16]}... is {where}, and remote '
                    f'{remote_name!r} lacks it; fetch its data first (repo.remote.fetch_data(...), '
                    '`hangarfs fetch-data REMOTE REF`)',
                    column=column,
                )
            locations.append(loc)
        datas = store.backends.read_many(locations)  # every value checked by its backend
        sent[0] += len(datas)
        sent[1] += sum(map(len, datas))
        yield from zip(batch, datas)


def push(
    store: RepoStore,
    remote_name: str,
    branch: str,
    *,
    force: bool = False,
    progress: Progress = NO_PROGRESS,
    remote: RemoteRepo | None = None,
) -> PushReport:
    """Push ``branch`` to ``remote_name``; see the module docstring."""
    if is_remote_branch_name(branch):
        raise ValueError(
            f'{branch!r} is a remote-tracking branch; push a local branch (create one from it with '
            f"repo.create_branch('NAME', {branch!r}))"
        )
    head = store.refs.branch_head(branch)
    if head is None:
        raise RefNotFound(branch, 'branch')
    if not head:
        raise RefNotFound(branch, message=f'branch {branch!r} has no commits yet: there is nothing to push')
    own = remote is None
    remote = remote or connect(store, remote_name, create=True)
    try:
        snap = remote.read_refs()
        remote_head = snap.branches.get(branch)
        if remote_head and remote_head != head and not force:
            _check_fast_forward(store, remote, remote_name, branch, remote_head, head)
        parents = store.refs.parents
        on_remote = set(remote.list_commits()) if remote_head != head else {head}
        history = set(iter_ancestors(parents, [head]))
        to_send = _commits_to_send(store, head, on_remote)
        tags, tag_records, conflicts = _tags_to_push(store, snap, history)
        outgoing = _outgoing(store, to_send)
        outgoing.objects.update(tag_records)
        sent = [0, 0]
        skipped = 0
        if to_send:
            remote.recover_orphans()  # packs an interrupted push uploaded but did not index: re-used
        known = remote.known_digests()
        wanted = {
            name: known.missing(list(digests)) for name, (_, digests) in sorted(outgoing.columns.items())
        }
        total = sum(len(v) for v in wanted.values())
        # the size of each sample is known from its ref only in the tree; estimate the bar from the
        # column's codec where it is fixed, and count bytes as packs complete
        estimate = 0
        for name, digests in wanted.items():
            codec = outgoing.columns[name][0]
            per = codec.fixed_nbytes if codec.kind == 'ndarray' and not codec.variable else 0
            estimate += len(digests) * (per + PACK_OVERHEAD)
        skipped = sum(len(d) for _, d in outgoing.columns.values()) - total
        if total:
            progress.begin(f'push {branch} to {remote_name}: data', estimate or None)
            try:
                for name, digests in wanted.items():
                    if digests:
                        remote.write_data_packs(
                            name, _blobs(store, name, digests, remote_name, sent), progress=progress.advance
                        )
            finally:
                progress.end()
        if outgoing.objects:
            progress.begin(f'push {branch} to {remote_name}: metadata', None)
            try:
                remote.write_meta_packs(outgoing.objects.items(), progress=progress.advance)
            finally:
                progress.end()
        for cid in to_send:
            remote.put_commit(cid, store.objects.require(bytes.fromhex(cid), 'commit'))
        conflicts += _move_refs(remote, snap, branch, remote_head, head, tags, force)
        set_tracking(store, remote_name, {branch: head})
        return PushReport(
            remote_name,
            branch,
            remote_head,
            head,
            commits=len(to_send),
            samples=sent[0],
            sample_bytes=sent[1],
            samples_skipped=skipped,
            objects=len(outgoing.objects),
            tags=tuple(sorted(t for t in tags if t not in conflicts)),
            tag_conflicts=tuple(sorted(set(conflicts))),
            forced=bool(force and remote_head and remote_head != head),
        )
    finally:
        if own:
            remote.close()


def _check_fast_forward(
    store: RepoStore, remote: RemoteRepo, remote_name: str, branch: str, remote_head: str, head: str
) -> None:
    if not store.objects.has_commit(remote_head):
        raise PushRejected(
            remote.url, remote_name, branch, remote_head, head, 'a commit this repository does not have'
        )
    if not is_ancestor(store.refs.parents, remote_head, head):
        raise PushRejected(
            remote.url,
            remote_name,
            branch,
            remote_head,
            head,
            f'which is not an ancestor of {head[:12]}: the histories diverged',
        )


def _commits_to_send(store: RepoStore, head: str, on_remote: set[str]) -> list[str]:
    """The commits reachable from ``head`` that the remote lacks, parents first."""
    order: list[str] = []
    done: set[str] = set()
    stack: list[tuple[str, bool]] = [(head, False)]
    while stack:
        cid, expanded = stack.pop()
        if cid in done or cid in on_remote:
            continue
        if expanded:
            done.add(cid)
            order.append(cid)
            continue
        stack.append((cid, True))
        stack.extend((p, False) for p in store.refs.parents(cid) if p not in done and p not in on_remote)
    return order


def _tags_to_push(
    store: RepoStore, snap: RefsSnapshot, history: set[str]
) -> tuple[dict[str, str], dict[bytes, bytes], list[str]]:
    """Local tags of commits in ``history`` the remote lacks (name -> target), their records, and
    the names the remote holds with another target."""
    tags: dict[str, str] = {}
    records: dict[bytes, bytes] = {}
    conflicts: list[str] = []
    for name, target in store.refs.list('tag').items():
        rec = store.objects.tag_record(bytes.fromhex(target))
        commit = rec.commit if rec is not None else target
        if commit not in history:
            continue
        there = snap.tags.get(name)
        if there == target:
            continue
        if there is not None:
            conflicts.append(name)
            continue
        tags[name] = target
        if rec is not None:
            records[bytes.fromhex(target)] = rec.to_bytes()
    return tags, records, conflicts


def _move_refs(
    remote: RemoteRepo,
    snap: RefsSnapshot,
    branch: str,
    based_on: str | None,
    head: str,
    tags: dict[str, str],
    force: bool,
) -> list[str]:
    """Compare-and-swap the remote refs; retry when only other refs moved. Returns tag conflicts."""
    conflicts: list[str] = []
    for _ in range(REFS_RETRIES):
        branches = {**snap.branches, branch: head}
        merged = dict(snap.tags)
        for name, target in tags.items():
            if name in merged and merged[name] != target:
                conflicts.append(name)
            else:
                merged[name] = target
        if branches == dict(snap.branches) and merged == dict(snap.tags):
            return conflicts  # nothing to change (a repeated push)
        try:
            remote.update_refs(snap, branches=branches, tags=merged, message=f'push {branch} {head[:12]}')
            return conflicts
        except RemoteRefMoved:
            current = remote.read_refs()
            if current.branches.get(branch) != based_on and not force:
                raise
            if current.branches.get(branch) == head:
                return conflicts  # another push of the same commits got there first
            snap = current
            conflicts = []
    raise RemoteRefMoved(remote.url, snap.generation, None, ' (other refs kept moving: try again)')
