"""``fsck`` of a remote: read and check everything it holds, and say what is wrong.

- ``config`` parses and is of a format this hangarfs reads;
- ``refs`` parses, and the version it replaced is in ``refs-log/``; every branch names a commit
  object that exists (and that ``verify_commit`` accepts, when given), every tag a commit or a blob
  an index names (a tag record);
- every index file hashes to its name and parses; every pack it names exists, and each of its
  entries matches a record of that pack exactly (digest, offset, length, checksum);
- every pack under ``data/`` and ``meta/`` is read whole and hashes to its name, every record passes
  its checksum, and its footer lists exactly its records. A pack no index names is an *orphan*
  (left by an interrupted upload; harmless, reported, adopted by ``recover_orphans``).

Packs are read ``concurrency`` at a time; ``progress`` is called with the bytes of each pack read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hangarfs.backends.pack_reads import verify_pack
from hangarfs.backends.remote_index import parse_index
from hangarfs.backends.remote_refs import read_refs
from hangarfs.backends.remote_repo import (
    COMMITS_PREFIX,
    CONFIG_KEY,
    DATA_PREFIX,
    META_PREFIX,
    RemoteConfig,
    RemoteRepo,
)
from hangarfs.backends.remote_upload import INDEX_PREFIX
from hangarfs.errors import HangarfsError
from hangarfs.errors_remote import RemoteCorrupt, RemoteObjectNotFound


@dataclass(frozen=True)
class FsckReport:
    """What fsck read and what it found wrong (``problems``, one sentence each)."""

    packs_checked: int
    bytes_checked: int
    blobs_checked: int
    index_files: int
    commits: int
    orphan_packs: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


_FIELDS = ('digest', 'offset', 'length', 'checksum')


def _rows(table: np.ndarray) -> set[tuple[bytes, int, int, int]]:
    return {
        (bytes(r['digest']), int(r['offset']), int(r['length']), int(r['checksum']))
        for r in table[list(_FIELDS)]
    }


def fsck_remote(
    remote: RemoteRepo,
    *,
    progress: Callable[[int], None] | None = None,
    verify_commit: Callable[[str, bytes], bool] | None = None,
    check_pack: Callable[[str, bytes, np.ndarray], list[str]] | None = None,
) -> FsckReport:
    """See the module docstring. ``check_pack(key, pack bytes, table)`` is called for every pack that
    passed its own checks, while its bytes are in memory, and returns more problems (the engine
    checks the blobs' content digests there, which this layer cannot compute)."""
    store = remote.store
    problems: list[str] = []
    try:
        RemoteConfig.from_bytes(store.get(CONFIG_KEY), store.url)
    except HangarfsError as err:
        problems.append(str(err))

    commits = {info.key[len(COMMITS_PREFIX) :] for info in store.list(COMMITS_PREFIX)}
    try:
        refs = read_refs(store)
        if refs.previous and not store.exists(refs.previous):
            problems.append(
                f'{store.url}/refs names {refs.previous} as its previous version, which is missing'
            )
        for name, target in sorted(refs.branches.items()):
            if target not in commits:
                problems.append(f'branch {name!r} names commit {target}, which the remote does not hold')
    except RemoteCorrupt as err:
        problems.append(str(err))
        refs = None
    if verify_commit is not None:
        for cid, body in remote.get_commits(sorted(commits)).items():
            if not verify_commit(cid, body):
                problems.append(f'{store.object_url(COMMITS_PREFIX + cid)} fails verification')

    indexed: dict[str, list[tuple[str, np.ndarray]]] = {}
    index_keys = [info.key for info in store.list(INDEX_PREFIX)]
    for key in index_keys:
        try:
            parsed = parse_index(store.get(key), store.object_url(key), key[len(INDEX_PREFIX) :])
        except (RemoteCorrupt, RemoteObjectNotFound) as err:
            problems.append(str(err))
            continue
        for ordinal, pack in enumerate(parsed.packs):
            indexed.setdefault(pack.key, []).append((key, parsed.table[parsed.table['pack'] == ordinal]))

    if refs is not None and refs.tags:  # a tag names a commit, or a tag record (a metadata blob)
        blobs = {bytes(d) for tables in indexed.values() for _, t in tables for d in t['digest']}
        for name, target in sorted(refs.tags.items()):
            if target not in commits and bytes.fromhex(target).rstrip(b'\0') not in blobs:
                problems.append(f'tag {name!r} names {target}, which is neither a commit nor a blob there')

    packs = [info for prefix in (DATA_PREFIX, META_PREFIX) for info in store.list(prefix)]
    listed = {info.key for info in packs}
    for key in sorted(set(indexed) - listed):
        names = ', '.join(sorted({k for k, _ in indexed[key]}))
        problems.append(f'{names} names pack {store.object_url(key)}, which is missing')

    def check(info: object) -> tuple[str, int, int, list[str]]:
        key = info.key  # type: ignore[attr-defined]
        where = store.object_url(key)
        found: list[str] = []
        try:
            data = store.get(key)
            _, table = verify_pack(data, key.rsplit('/', 1)[-1], where)
        except HangarfsError as err:
            return key, 0, 0, [str(err)]
        if check_pack is not None:
            found.extend(check_pack(key, data, table))
        present = _rows(table)
        for index_key, rows in indexed.get(key, []):
            wrong = len(_rows(rows) - present)
            if wrong:
                found.append(
                    f'{store.object_url(index_key)} has {wrong} entries that do not match pack {where}'
                )
        if progress is not None:
            progress(len(data))
        return key, len(data), len(table), found

    nbytes = nblobs = 0
    for _, size, count, found in remote.parallel_map(check, packs):
        nbytes += size
        nblobs += count
        problems.extend(found)
    return FsckReport(
        packs_checked=len(packs),
        bytes_checked=nbytes,
        blobs_checked=nblobs,
        index_files=len(index_keys),
        commits=len(commits),
        orphan_packs=tuple(sorted(listed - set(indexed))),
        problems=tuple(problems),
    )
