"""The repository store (``.hangarfs/``): history, staging, data files, and how to reach them.

Two LMDB environments, so that the frequent, unsynced staging writes can never damage history:

- ``history/`` (every transaction synced): ``objects`` (commits, snapshots, tags, tree nodes, keyed by
  digest; see ``objects.py``), ``commits`` (commit digests as hex, for prefix lookup), ``refs``
  (``branch:NAME``, ``tag:NAME``; see ``refs.py``), ``locations`` (sample digest -> where its bytes
  are), ``config``.
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
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from hangarfs.backends import BackendSet
from hangarfs.backends.codes import CODE_SIZE, BackendCode
from hangarfs.engine.lmdbenv import ENVIRONMENTS, EnvSpec, LmdbEnv
from hangarfs.engine.objects import ObjectStore
from hangarfs.engine.refs import Refs
from hangarfs.engine.tables import Table, Tables
from hangarfs.engine.tree import NodeCache
from hangarfs.errors import RepositoryFormatError, RepositoryNotFound

if TYPE_CHECKING:
    from hangarfs.engine.samples import SampleCodec

STORE_DIR = '.hangarfs'
DEFAULT_BRANCH = 'master'
FORMAT_FILE = 'FORMAT'
FORMAT_TEXT = 'hangarfs repository format 1\n'
REMOTE_PREFIX = BackendCode.REMOTE.prefix
HISTORY_DBS = ('objects', 'commits', 'refs', 'locations', 'config')
STAGING_DBS = ('stage', 'schemas', 'meta', 'locations', 'bufidx', 'counts', 'info', 'attrs')


class RemoteSampleReader(Protocol):
    """Reads the bytes of samples that only a remote holds (a lazy mount attaches one to its store)."""

    def read_range(
        self, digest: bytes, location: bytes, codec: SampleCodec, ref: bytes, start: int, stop: int
    ) -> bytes:
        """Bytes ``[start, stop)`` of the sample, verified against ``digest`` before any is returned."""


def is_placeholder(location: bytes) -> bool:
    """True for a remote placeholder: the bytes are on a remote only (backend code ``50``)."""
    return location[:CODE_SIZE] == REMOTE_PREFIX


def store_dir(repo_path: str | os.PathLike[str]) -> Path:
    return Path(repo_path) / STORE_DIR


def is_repository(repo_path: str | os.PathLike[str]) -> bool:
    return (store_dir(repo_path) / FORMAT_FILE).is_file()


class RepoStore:
    """Open handles on one repository's store, shared by its checkouts in this process.

    ``objects`` (verified reads) and ``refs`` (compare-and-swap moves) are the typed boundary the
    rest of the engine goes through; ``history``/``staging`` are the environments, and
    :meth:`history_table` / :meth:`staging_table` their tables.
    """

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
        self._history_tables = Tables(self.history, HISTORY_DBS)
        self._staging: LmdbEnv | None = None
        self._staging_tables: Tables | None = None
        self._staging_lock = threading.Lock()
        self.data_dir = self.dir / 'data'
        self.backends = BackendSet(self.data_dir)
        self.objects = ObjectStore(self.history_table('objects'), self.history_table('commits'))
        self.refs = Refs(self.history_table('refs'), self.objects, self.staging_branch)
        # bound to the object store, not to self, so the store can be collected as soon as it is unused
        self.nodes = NodeCache(
            functools.partial(self.objects.get, what='tree node'),
            load_many=functools.partial(self.objects.get_many, what='tree node'),
        )
        #: Set by a lazy mount: serves reads of samples whose location is a remote placeholder.
        self.remote_reader: RemoteSampleReader | None = None

    def history_table(self, name: str) -> Table:
        return self._history_tables[name]

    @property
    def staging(self) -> LmdbEnv:
        if self._staging is None or self._staging.closed:  # closed: replaced by a compaction
            with self._staging_lock:
                if self._staging is None or self._staging.closed:
                    env = ENVIRONMENTS.open(EnvSpec(str(self.dir / 'staging'), STAGING_DBS, sync=False))
                    self._envs.append(env)
                    self._staging_tables = Tables(env, STAGING_DBS)
                    self._staging = env
        return self._staging

    def staging_table(self, name: str) -> Table:
        self.staging  # noqa: B018 (opens the environment, or reopens it after a compaction)
        assert self._staging_tables is not None
        return self._staging_tables[name]

    def staging_branch(self) -> str:
        """The branch the staging area is on (the writer's; ``master`` before any writer)."""
        branch = self.staging_table('info').get(b'branch')
        return branch.decode() if branch else DEFAULT_BRANCH

    @property
    def lock_path(self) -> Path:
        return self.dir / 'writer.lock'

    # config

    def config_get(self, key: str, default: str = '') -> str:
        v = self.history_table('config').get(key.encode())
        return v.decode() if v is not None else default

    def config_set(self, key: str, value: str) -> None:
        self.history_table('config').put(key.encode(), value.encode())

    # sample bytes

    def location(self, digest: bytes) -> bytes | None:
        loc = self.history_table('locations').get(digest)
        if (loc is None or is_placeholder(loc)) and self._staging is not None:  # (a writer's process)
            loc = self.staging_table('locations').get(digest) or loc
        return loc

    def locations(self, digests: list[bytes]) -> dict[bytes, bytes]:
        """Where many samples' bytes are, in one transaction per environment."""
        found = self.history_table('locations').get_many(digests)
        if self._staging is not None:
            rest = [d for d in digests if d not in found or is_placeholder(found[d])]
            if rest:
                found.update(self.staging_table('locations').get_many(rest))
        return found

    def close(self) -> None:
        """Close data files and release the LMDB environments (the store is unusable afterwards)."""
        self.backends.close()
        if self._finalizer.detach() is not None:
            ENVIRONMENTS.release_all(self._envs)
