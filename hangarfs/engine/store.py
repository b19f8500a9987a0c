"""The repository store (``.hangarfs/``): history, staging, data files, and how to reach them.

Two LMDB environments, so that the frequent, unsynced staging writes can never damage history:

- ``history/`` (every transaction synced): ``objects`` (commits, snapshots, tags, tree nodes, keyed by
  digest), ``commits`` (commit digests as hex, for prefix lookup), ``refs`` (``branch:NAME``,
  ``tag:NAME``), ``locations`` (sample digest -> where its bytes are), ``config``.
- ``staging/`` (not synced per transaction; survives a killed process, not a power cut): the staging
  area of the one writer (see ``staging.py``).

Sample data lives in sealed files under ``data/`` (see ``hangarfs.backends``), or inline in a
``locations`` value for small values. A data file is fsynced before any synced location names it.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

from hangarfs.backends import BackendSet
from hangarfs.engine.lmdbenv import ENVIRONMENTS, EnvSpec, LmdbEnv
from hangarfs.engine.records import (
    EMPTY_SNAPSHOT,
    TYPE_TAG,
    CommitRecord,
    Snapshot,
    TagRecord,
)
from hangarfs.engine.tree import NodeCache
from hangarfs.errors import (
    AmbiguousRef,
    RefMoved,
    RefNotFound,
    RepositoryFormatError,
    RepositoryNotFound,
)

STORE_DIR = '.hangarfs'
FORMAT_FILE = 'FORMAT'
FORMAT_TEXT = 'hangarfs repository format 1\n'
HISTORY_DBS = ('objects', 'commits', 'refs', 'locations', 'config')
STAGING_DBS = ('stage', 'schemas', 'meta', 'locations', 'bufidx', 'counts', 'info', 'attrs')
MIN_PREFIX = 4


@dataclass(frozen=True)
class ResolvedRef:
    """What a user-given ref named: a commit, and the branch or tag it came through (if any)."""

    commit: str  # '' for a branch without commits
    branch: str | None = None
    tag: str | None = None


def store_dir(repo_path: str | os.PathLike[str]) -> Path:
    return Path(repo_path) / STORE_DIR


def is_repository(repo_path: str | os.PathLike[str]) -> bool:
    return (store_dir(repo_path) / FORMAT_FILE).is_file()


class RepoStore:
    """Open handles on one repository's store, shared by its checkouts in this process."""

    def __init__(self, repo_path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(repo_path))
        self.dir = store_dir(self.path)
        fmt = self.dir / FORMAT_FILE
        if not fmt.is_file():
            raise RepositoryNotFound(self.path)
        text = fmt.read_text()
        if text != FORMAT_TEXT:
            raise RepositoryFormatError(
                f'{fmt} says {text.strip()!r}; this hangarfs reads {FORMAT_TEXT.strip()!r} only'
            )
        self._envs: list[LmdbEnv] = []  # released when this store is closed or collected
        # a finalizer only queues the release: it may run inside the registry's own lock (see lmdbenv)
        self._finalizer = weakref.finalize(self, ENVIRONMENTS.release_soon, self._envs)
        self.history: LmdbEnv = ENVIRONMENTS.open(EnvSpec(str(self.dir / 'history'), HISTORY_DBS, sync=True))
        self._envs.append(self.history)
        self._staging: LmdbEnv | None = None
        self._staging_lock = threading.Lock()
        self.data_dir = self.dir / 'data'
        self.backends = BackendSet(self.data_dir)
        # bound to the environment, not to self, so the store can be collected as soon as it is unused
        self.nodes = NodeCache(functools.partial(self.history.get, 'objects'))

    @property
    def staging(self) -> LmdbEnv:
        if self._staging is None or self._staging.closed:  # closed: replaced by a compaction
            with self._staging_lock:
                if self._staging is None or self._staging.closed:
                    self._staging = ENVIRONMENTS.open(
                        EnvSpec(str(self.dir / 'staging'), STAGING_DBS, sync=False)
                    )
                    self._envs.append(self._staging)
        return self._staging

    @property
    def lock_path(self) -> Path:
        return self.dir / 'writer.lock'

    # objects

    def get_object(self, digest: bytes) -> bytes | None:
        return self.history.get('objects', digest)

    def commit_record(self, commit: str) -> CommitRecord:
        data = self.get_object(bytes.fromhex(commit)) if commit else None
        if data is None:
            raise RefNotFound(commit, 'commit')
        return CommitRecord.from_bytes(data)

    def snapshot_of(self, commit: str) -> Snapshot:
        if not commit:
            return EMPTY_SNAPSHOT
        rec = self.commit_record(commit)
        data = self.get_object(bytes.fromhex(rec.snapshot))
        if data is None:
            raise RepositoryFormatError(f'commit {commit} names snapshot {rec.snapshot}, which is missing')
        return Snapshot.from_bytes(data)

    def has_commit(self, commit: str) -> bool:
        return self.history.get('commits', commit.encode()) is not None

    # config

    def config_get(self, key: str, default: str = '') -> str:
        v = self.history.get('config', key.encode())
        return v.decode() if v is not None else default

    def config_set(self, key: str, value: str) -> None:
        with self.history.write() as txn:
            txn.put(key.encode(), value.encode(), db=self.history.db('config'))

    # refs

    def branch_head(self, name: str) -> str | None:
        v = self.history.get('refs', b'branch:' + name.encode())
        return v.decode() if v is not None else None

    def list_refs(self, kind: str) -> dict[str, str]:
        prefix = f'{kind}:'.encode()
        out = {}
        with self.history.read() as txn:
            cur = txn.cursor(db=self.history.db('refs'))
            if cur.set_range(prefix):
                for k, v in cur:
                    if not k.startswith(prefix):
                        break
                    out[k[len(prefix) :].decode()] = v.decode()
        return out

    def tag_commit(self, name: str) -> str | None:
        v = self.history.get('refs', b'tag:' + name.encode())
        if v is None:
            return None
        data = self.get_object(bytes.fromhex(v.decode()))
        if data is not None and data[:1] == TYPE_TAG:
            return TagRecord.from_bytes(data).commit
        return v.decode()

    def cas_ref(self, txn: object, ref: str, expected: str | None, new: str | None) -> None:
        """Move ``ref`` from ``expected`` to ``new`` inside a history write transaction, or raise RefMoved.

        ``None`` means absent (for creation and deletion).
        """
        db = self.history.db('refs')
        key = ref.encode()
        cur = txn.get(key, db=db)  # type: ignore[attr-defined]
        found = cur.decode() if cur is not None else None
        if found != expected:
            raise RefMoved(ref, expected, found)
        if new is None:
            txn.delete(key, db=db)  # type: ignore[attr-defined]
        else:
            txn.put(key, new.encode(), db=db)  # type: ignore[attr-defined]

    def resolve(self, ref: str) -> ResolvedRef:
        """A branch name, tag name, full commit digest or unique prefix of one (at least 4 hex digits),
        HEAD, or any of those followed by ``~N`` / ``^N`` (see ``revparse.py``)."""
        if not isinstance(ref, str) or not ref:
            raise RefNotFound(str(ref))
        head = self.branch_head(ref)
        if head is not None:
            return ResolvedRef(head, branch=ref)
        tagged = self.tag_commit(ref)
        if tagged is not None:
            return ResolvedRef(tagged, tag=ref)
        from hangarfs.engine import revparse

        if revparse.is_revision(ref):  # HEAD, master~1, v1^2
            return revparse.resolve_revision(self, ref)
        return ResolvedRef(self.resolve_commit(ref))

    def resolve_commit(self, ref: str) -> str:
        text = ref.lower()
        if len(text) < MIN_PREFIX or any(c not in '0123456789abcdef' for c in text):
            raise RefNotFound(ref)
        found = []
        with self.history.read() as txn:
            cur = txn.cursor(db=self.history.db('commits'))
            if cur.set_range(text.encode()):
                for k in cur.iternext(keys=True, values=False):
                    if not k.startswith(text.encode()):
                        break
                    found.append(k.decode())
                    if len(found) > 5:
                        break
        if not found:
            raise RefNotFound(ref)
        if len(found) > 1:
            raise AmbiguousRef(ref, found)
        return found[0]

    # sample bytes

    def location(self, digest: bytes) -> bytes | None:
        loc = self.history.get('locations', digest)
        if loc is None and self._staging is not None:  # only a writer's process has staging open
            loc = self.staging.get('locations', digest)
        return loc

    def locations(self, digests: list[bytes]) -> dict[bytes, bytes]:
        """Where many samples' bytes are, in one transaction per environment."""
        with self.history.read() as txn:
            found = dict(txn.cursor(db=self.history.db('locations')).getmulti(digests))
        if len(found) < len(digests) and self._staging is not None:
            rest = [d for d in digests if d not in found]
            with self.staging.read() as txn:
                found.update(txn.cursor(db=self.staging.db('locations')).getmulti(rest))
        return found

    def close(self) -> None:
        """Close data files and release the LMDB environments (the store is unusable afterwards)."""
        self.backends.close()
        if self._finalizer.detach() is not None:
            ENVIRONMENTS.release_all(self._envs)
