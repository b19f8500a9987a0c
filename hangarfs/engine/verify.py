"""Integrity verification: re-hash every commit, snapshot, tree node and sample reachable from a ref,
and every sample staged for the next commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hangarfs.backends.codes import CODE_SIZE, BackendCode
from hangarfs.engine.history import iter_ancestors
from hangarfs.engine.keys import decode_key_pair, decode_one_key
from hangarfs.engine.records import DIGEST_SIZE, CommitRecord, Snapshot, TagRecord, digest_of
from hangarfs.engine.samples import SampleCodec
from hangarfs.engine.store import RepoStore
from hangarfs.engine.tree import Leaf, tree_node_digests
from hangarfs.errors import CorruptData, HangarfsError


@dataclass
class VerifyReport:
    commits: int = 0
    nodes: int = 0
    samples: int = 0
    staged: int = 0  # of which staged (not committed yet)
    remote: int = 0  # of which only a remote holds (placeholders: nothing here to read)
    bytes_read: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        staged = f', {self.staged} of them staged' if self.staged else ''
        if self.remote:
            staged += (
                f', {self.remote} of them only on a remote (not read here: `hangarfs verify --remote NAME` '
                'checks what a remote holds)'
            )
        head = (
            f'verified {self.commits} commits, {self.nodes} tree nodes, {self.samples} samples{staged} '
            f'({self.bytes_read / 1e6:.1f} MB)'
        )
        if self.ok:
            return head + ': no problems'
        return head + f': {len(self.problems)} problem(s)\n' + '\n'.join(f'  - {p}' for p in self.problems)


def verify_store(store: RepoStore, progress: Callable[[int], None] | None = None) -> VerifyReport:
    report = VerifyReport()
    heads = [*store.refs.list('branch').values(), *store.refs.remote_branches().values()]
    for name, target in store.refs.list('tag').items():
        data = store.objects.get_unverified(bytes.fromhex(target))
        if data is None:
            report.problems.append(f'tag {name!r} names {target}, which is missing')
        elif data[:1] == b'T':
            if digest_of(data).hex() != target:
                report.problems.append(f'tag {name!r}: its record does not hash to its digest {target}')
            heads.append(TagRecord.from_bytes(data).commit)
        else:
            heads.append(target)

    def parents_of(c: str) -> tuple[str, ...]:
        try:
            return store.objects.commit(c).parents
        except (HangarfsError, ValueError, KeyError):  # missing or damaged: reported in the loop below
            return ()

    seen_nodes: set[bytes] = set()
    seen_samples: set[bytes] = set()
    for commit in iter_ancestors(parents_of, heads):
        report.commits += 1
        data = store.objects.get_unverified(bytes.fromhex(commit))
        if data is None:
            report.problems.append(f'commit {commit} is missing')
            continue
        if digest_of(data).hex() != commit:
            report.problems.append(f'commit {commit}: its record does not hash to its digest')
            continue
        rec = CommitRecord.from_bytes(data)
        snap_data = store.objects.get_unverified(bytes.fromhex(rec.snapshot))
        if snap_data is None or digest_of(snap_data).hex() != rec.snapshot:
            report.problems.append(f'commit {commit}: snapshot {rec.snapshot} is missing or damaged')
            continue
        snap = Snapshot.from_bytes(snap_data)
        for name, state in snap.columns.items():
            codec = SampleCodec(name, state.schema)
            _verify_tree(
                store,
                report,
                seen_nodes,
                seen_samples,
                commit,
                name,
                state.root,
                codec,
                nested=state.schema.nested,
                progress=progress,
            )
        _verify_tree(
            store,
            report,
            seen_nodes,
            seen_samples,
            commit,
            'metadata',
            snap.metadata_root,
            None,
            nested=False,
            progress=progress,
        )
    _verify_staged(store, report, seen_samples, progress)
    return report


def _verify_staged(
    store: RepoStore, report: VerifyReport, seen: set[bytes], progress: Callable[[int], None] | None
) -> None:
    """Re-hash the samples staged for the next commit (read without becoming the writer)."""
    from hangarfs.engine.staging import SET, StagingArea, column_prefix

    staging = StagingArea(store)  # opens the staging environment: its inline values are located there
    if not staging.is_dirty():
        return
    base = store.objects.snapshot(staging.info().base)
    schemas = {n: s.schema for n, s in base.columns.items()}
    schemas.update({n: s for n, s in staging.schemas().items() if s is not None})
    before = report.samples
    for column in sorted(staging.staged_columns()):
        schema = schemas.get(column)
        if schema is None:
            continue
        codec = SampleCodec(column, schema)
        for rest, value in staging.iter_prefix(column_prefix(column)):
            if value[:1] != SET:
                continue
            key: object = decode_key_pair(rest) if schema.nested else decode_one_key(rest)
            _verify_sample(store, report, seen, f'{column} (staged)', key, value[1:], codec, progress)
    report.staged = report.samples - before


def _verify_tree(
    store: RepoStore,
    report: VerifyReport,
    seen_nodes: set[bytes],
    seen_samples: set[bytes],
    commit: str,
    column: str,
    root: bytes,
    codec: SampleCodec | None,
    *,
    nested: bool,
    outer_key: object = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    if root in seen_nodes:
        return
    try:
        for d, node in tree_node_digests(store.nodes, root):
            if d in seen_nodes:
                continue
            seen_nodes.add(d)
            report.nodes += 1
            raw = store.objects.get_unverified(d)
            if raw is None or digest_of(raw) != d:
                report.problems.append(
                    f'commit {commit[:12]}, column {column!r}: tree node {d.hex()} is damaged'
                )
                continue
            if not isinstance(node, Leaf):
                continue
            for kenc, value in zip(node.keys, node.values):
                if codec is None:
                    continue
                if nested:  # the value is the root of the sample's own tree of subsamples
                    _verify_tree(
                        store,
                        report,
                        seen_nodes,
                        seen_samples,
                        commit,
                        column,
                        value[:DIGEST_SIZE],
                        codec,
                        nested=False,
                        outer_key=decode_one_key(kenc),
                        progress=progress,
                    )
                    continue
                key = decode_one_key(kenc) if outer_key is None else (outer_key, decode_one_key(kenc))
                _verify_sample(store, report, seen_samples, column, key, value, codec, progress)
    except KeyError as err:
        report.problems.append(f'commit {commit[:12]}, column {column!r}: {err.args[0]}')
    except CorruptData as err:  # a tree node missing, or whose bytes no longer decode
        report.problems.append(f'commit {commit[:12]}, column {column!r}: {err}')


def _verify_sample(
    store: RepoStore,
    report: VerifyReport,
    seen: set[bytes],
    column: str,
    key: object,
    ref: bytes,
    codec: SampleCodec,
    progress: Callable[[int], None] | None,
) -> None:
    if codec.inline:  # the tree holds the value itself: it only has to be the right size
        report.samples += 1
        if len(ref) != codec.fixed_nbytes:
            expected = codec.fixed_nbytes
            report.problems.append(
                f'column {column!r}, key {key!r}: inline value holds {len(ref)} bytes, expected {expected}'
            )
        return
    digest = ref[:DIGEST_SIZE]
    if digest in seen:
        return
    seen.add(digest)
    report.samples += 1
    loc = store.location(digest)
    if loc is not None and loc[:CODE_SIZE] == BackendCode.REMOTE.prefix:
        report.remote += 1
        return
    if loc is None:
        report.problems.append(
            f'column {column!r}, key {key!r}: no stored bytes for its digest {digest.hex()[:16]}'
        )
        return
    try:
        data = store.backends.read(loc)
    except HangarfsError as err:
        report.problems.append(f'column {column!r}, key {key!r}: {err}')
        return
    except OSError as err:
        report.problems.append(f'column {column!r}, key {key!r}: cannot read: {err}')
        return
    report.bytes_read += len(data)
    if codec.digest_of_data(bytes(data), ref) != digest:
        report.problems.append(
            f'column {column!r}, key {key!r}: stored bytes do not hash to the sample digest'
        )
    if progress is not None:
        progress(1)
