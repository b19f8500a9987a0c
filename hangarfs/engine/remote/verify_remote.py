"""``hangarfs verify --remote origin``: check everything a remote holds, to the content digests.

The storage layer's fsck reads every pack whole and checks it against its name (blake2b), its
records against their checksums, its footer and the indexes against it, the refs against the commits
(``backends/remote_fsck``). On top of that, this checks what only the engine knows how to compute:

- every commit object hashes to its name and decodes; its parents are on the remote;
- every snapshot, tree node and tag record reachable from the remote's refs is in its metadata packs
  and hashes to its digest (they are read through the local metadata cache, which checks each);
- every sample those trees name has data on the remote, and that data hashes to the sample's
  blake2b content digest (computed with the sample's dtype and shape), checked while fsck holds
  each pack in memory: the remote is read once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hangarfs.backends.packs import RECORD, digests_of
from hangarfs.backends.remote_fsck import FsckReport
from hangarfs.backends.remote_repo import DATA_PREFIX, RemoteRepo
from hangarfs.engine.records import CommitRecord, Snapshot, TagRecord, digest_of
from hangarfs.engine.remote.config import cache_dir, connect
from hangarfs.engine.remote.metacache import MetaCache, MetaObjects
from hangarfs.engine.remote.progress import NO_PROGRESS, Progress
from hangarfs.engine.remote.walk import nested_inner_roots, snapshot_roots, tree_walk
from hangarfs.engine.samples import SampleCodec
from hangarfs.engine.store import RepoStore
from hangarfs.engine.tree import Leaf
from hangarfs.errors import HangarfsError


@dataclass
class RemoteVerifyReport:
    """What ``verify --remote`` read and found."""

    remote: str
    url: str
    fsck: FsckReport | None = None
    commits: int = 0
    objects: int = 0
    samples: int = 0
    samples_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        f = self.fsck
        packs = ''
        if f is not None:
            packs = f'{f.packs_checked} packs ({f.bytes_checked / 1e6:.1f} MB), {f.index_files} index files'
            if f.orphan_packs:
                packs += f', {len(f.orphan_packs)} orphan pack(s) (an interrupted push left them; harmless)'
        head = (
            f'verified remote {self.remote!r} ({self.url}): {packs}, {self.commits} commits, '
            f'{self.objects} metadata objects, {self.samples_checked} of {self.samples} samples '
            'against their content digests'
        )
        if self.ok:
            return head + ': no problems'
        return head + f': {len(self.problems)} problem(s)\n' + '\n'.join(f'  - {p}' for p in self.problems)


def _commits(remote: RemoteRepo, report: RemoteVerifyReport) -> dict[str, CommitRecord]:
    records: dict[str, CommitRecord] = {}
    for cid, body in remote.get_commits(remote.list_commits()).items():
        if digest_of(body).hex() != cid:
            report.problems.append(f'commit {cid} does not hash to its name')
            continue
        try:
            records[cid] = CommitRecord.from_bytes(body)
        except (ValueError, KeyError) as err:
            report.problems.append(f'commit {cid} does not decode: {err}')
    for cid, rec in records.items():
        for p in rec.parents:
            if p not in records:
                report.problems.append(f'commit {cid[:12]} names parent {p}, which the remote does not hold')
    return records


def _expected_samples(
    objects: MetaObjects, records: dict[str, CommitRecord], report: RemoteVerifyReport
) -> dict[bytes, tuple[SampleCodec, bytes]]:
    """digest -> (codec, ref) of every sample the remote's commits name (objects checked on the way)."""
    expected: dict[bytes, tuple[SampleCodec, bytes]] = {}
    seen: set[bytes] = set()

    def load(d: bytes) -> bytes:
        data = objects.get(d)
        if data is None:
            raise KeyError(d)
        return data

    def walk(root: bytes, codec: SampleCodec | None, nested: bool, where: str) -> None:
        leaves = []
        try:
            for d, _, node in tree_walk(load, root, lambda x: x in seen):
                seen.add(d)
                report.objects += 1
                if isinstance(node, Leaf):
                    leaves.append(node)
        except KeyError as err:
            report.problems.append(f'{where}: tree node {err.args[0].hex()} is not in any metadata pack')
            return
        except HangarfsError as err:
            report.problems.append(f'{where}: {err}')
            return
        if codec is None:
            return
        if nested:
            for _, inner in nested_inner_roots(leaves):
                walk(inner, codec, False, where)
        elif not codec.inline:
            for leaf in leaves:
                for ref in leaf.values:
                    expected.setdefault(ref[:32], (codec, ref))

    for cid, rec in records.items():
        report.commits += 1
        try:
            snap = Snapshot.from_bytes(load(bytes.fromhex(rec.snapshot)))
        except (KeyError, ValueError, HangarfsError) as err:
            report.problems.append(
                f'commit {cid[:12]}: snapshot {rec.snapshot} is missing or damaged ({err})'
            )
            continue
        for column, root in snapshot_roots(snap):
            if column is None:
                walk(root, None, False, f'commit {cid[:12]}, metadata')
            else:
                schema = snap.columns[column].schema
                where = f'commit {cid[:12]}, column {column!r}'
                walk(root, SampleCodec(column, schema), schema.nested, where)
    return expected


def verify_remote(
    store: RepoStore, remote_name: str, *, progress: Progress = NO_PROGRESS
) -> RemoteVerifyReport:
    """Check everything remote ``remote_name`` holds; see the module docstring."""
    with connect(store, remote_name) as remote:
        report = RemoteVerifyReport(remote_name, remote.url)
        refs = remote.read_refs()
        records = _commits(remote, report)
        meta = MetaCache(cache_dir(store, remote_name) / 'meta')
        meta.sync(remote, progress)
        with meta.open() as objects:
            for name, target in refs.tags.items():
                if target in records:
                    continue
                data = objects.get(bytes.fromhex(target))
                if data is None or data[:1] != b'T' or TagRecord.from_bytes(data).commit not in records:
                    report.problems.append(f'tag {name!r} names {target}: no tag record of a commit there')
            expected = _expected_samples(objects, records, report)
        report.samples = len(expected)
        found: set[bytes] = set()
        damaged: set[bytes] = set()

        def check_pack(key: str, data: bytes, table: np.ndarray) -> list[str]:
            if not key.startswith(DATA_PREFIX):
                return []
            out = []
            view = memoryview(data)
            rows = zip(digests_of(table), table['offset'].tolist(), table['length'].tolist())
            for d, offset, length in rows:
                item = expected.get(d)
                if item is None:
                    continue  # not named by any commit (an interrupted push's, or a forced push's)
                codec, ref = item
                blob = view[offset + RECORD.size : offset + RECORD.size + length]
                if length != codec.nbytes_of(ref) or codec.digest_of_data(blob, ref) != d:
                    damaged.add(d)
                    out.append(
                        f'{remote.store.object_url(key)}: sample {d.hex()} of column {codec.column!r} '
                        'does not hash to its digest (damaged or forged data)'
                    )
                else:
                    found.add(d)
            return out

        progress.begin(f'verify {remote_name}', None)
        try:
            report.fsck = remote.fsck(
                progress=progress.advance,
                verify_commit=lambda cid, body: digest_of(body).hex() == cid,
                check_pack=check_pack,
            )
        finally:
            progress.end()
        report.problems.extend(report.fsck.problems)
        report.samples_checked = len(found)
        missing = set(expected) - found - damaged
        if missing:
            report.problems.append(
                f"{len(missing)} sample(s) named by the remote's commits have no data there "
                f'(such as {next(iter(missing)).hex()})'
            )
        return report
