"""The content-addressed object store: commits, snapshots, tags and tree nodes, verified when read.

Every object is stored under the blake2b-256 digest of its bytes, so :meth:`ObjectStore.get` re-hashes
what it returns: a flipped byte is a :class:`~hangarfs.errors.CorruptData` naming the object, never a
wrong answer. This is the seam a remote plugs into (a remote is another object store): what arrives
from storage nobody here controls is checked the same way. Writes are idempotent (an object that is
present is left as it is).

``commits`` is a second table: the hex digest of every commit, so that a unique prefix of a digest
can be resolved by a range scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from hangarfs.engine.lmdbenv import Txn
from hangarfs.engine.records import (
    EMPTY_SNAPSHOT,
    TYPE_COMMIT,
    TYPE_SNAPSHOT,
    TYPE_TAG,
    CommitRecord,
    Snapshot,
    TagRecord,
    digest_of,
)
from hangarfs.engine.tables import Table
from hangarfs.errors import CorruptData, RefNotFound, RepositoryFormatError

_KIND_OF_TYPE = {TYPE_COMMIT: 'commit', TYPE_SNAPSHOT: 'snapshot', TYPE_TAG: 'tag'}


def object_kind(data: bytes) -> str:
    """What an object's bytes hold: 'commit', 'snapshot', 'tag' or 'tree node'."""
    return _KIND_OF_TYPE.get(data[:1], 'tree node')


class ObjectStore:
    """Objects by digest in one table, verified on every read."""

    def __init__(self, objects: Table, commits: Table) -> None:
        self._objects = objects
        self._commits = commits

    # ------------------------------------------------------------------ raw objects

    def get(self, digest: bytes, what: str = 'object') -> bytes | None:
        """The bytes stored under ``digest`` (None if absent), after checking that they hash to it."""
        data = self._objects.get(digest)
        if data is not None:
            got = digest_of(data)
            if got != digest:
                raise CorruptData(
                    f'{what} {digest.hex()} is damaged: its stored bytes hash to {got.hex()[:16]}...; '
                    'run `hangarfs verify` for a full report',
                    where=f'{what} {digest.hex()}',
                    expected=digest.hex(),
                    got=got.hex(),
                )
        return data

    def get_many(self, digests: Sequence[bytes], what: str = 'object') -> dict[bytes, bytes]:
        """:meth:`get` for many digests in one read transaction: the present ones, each verified."""
        found = self._objects.get_many(digests)
        for digest, data in found.items():
            if digest_of(data) != digest:
                self.get(digest, what)  # raises the error that names the damage
        return found

    def require(self, digest: bytes, what: str) -> bytes:
        """As :meth:`get`, but a missing object is damage too (something names it)."""
        data = self.get(digest, what)
        if data is None:
            raise CorruptData(
                f'{what} {digest.hex()} is missing from the store; run `hangarfs verify` for a full report',
                where=f'{what} {digest.hex()}',
            )
        return data

    def get_unverified(self, digest: bytes) -> bytes | None:
        """The stored bytes as they are (for the verifier, which hashes them itself and reports)."""
        return self._objects.get(digest)

    def contains(self, digest: bytes) -> bool:
        return self._objects.get(digest) is not None

    def put(self, digest: bytes, data: bytes, *, txn: Txn) -> None:
        """Store an object (kept as it is when present: same digest, same bytes)."""
        self._objects.put(digest, data, txn=txn, overwrite=False)

    def put_many(self, items: Iterable[tuple[bytes, bytes]], *, txn: Txn) -> None:
        self._objects.put_many(sorted(items), txn=txn, overwrite=False)

    # ------------------------------------------------------------------ typed records

    def commit(self, commit: str) -> CommitRecord:
        """The record of a commit, by full hex digest (RefNotFound when there is none)."""
        data = self.get(bytes.fromhex(commit), 'commit') if commit else None
        if data is None:
            raise RefNotFound(commit, 'commit')
        try:
            return CommitRecord.from_bytes(data)
        except (ValueError, KeyError) as err:
            raise CorruptData(f'commit {commit} does not decode: {err}', where=f'commit {commit}') from err

    def snapshot(self, commit: str) -> Snapshot:
        """The snapshot a commit records (the empty snapshot for no commit)."""
        if not commit:
            return EMPTY_SNAPSHOT
        rec = self.commit(commit)
        data = self.get(bytes.fromhex(rec.snapshot), 'snapshot')
        if data is None:
            raise RepositoryFormatError(f'commit {commit} names snapshot {rec.snapshot}, which is missing')
        return Snapshot.from_bytes(data)

    def tag_record(self, digest: bytes) -> TagRecord | None:
        """The annotated tag record stored under ``digest``, or None if that object is not one."""
        data = self.get(digest, 'tag')
        if data is None or data[:1] != TYPE_TAG:
            return None
        return TagRecord.from_bytes(data)

    # ------------------------------------------------------------------ the commit index

    def add_commit(self, commit: str, data: bytes, *, txn: Txn) -> None:
        """Store a commit record and index its digest (for prefix lookup)."""
        self._objects.put(bytes.fromhex(commit), data, txn=txn)
        self._commits.put(commit.encode(), b'', txn=txn)

    def has_commit(self, commit: str) -> bool:
        return self._commits.get(commit.encode()) is not None

    def commits_with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` full commit digests that start with the hex ``prefix``, in order."""
        found: list[str] = []
        with self._commits.scan(prefix.encode(), keys_only=True) as items:
            for k, _ in items:
                found.append(k.decode())
                if len(found) >= limit:
                    break
        return found

    def iter_commits(self) -> Iterator[str]:
        """Every commit digest in the store, in hex order."""
        with self._commits.scan(keys_only=True) as items:
            for k, _ in items:
                yield k.decode()
