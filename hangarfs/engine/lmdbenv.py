"""LMDB access in one place: environments, named databases, short transactions.

LMDB forbids opening one environment twice in a process, so environments are shared through a small
registry keyed by real path (and process id, so that a forked child opens its own). Everything else
holds an :class:`LmdbEnv` and asks it for transactions.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import lmdb

MAP_SIZE = 1 << 40  # address space only; the file grows as needed


@dataclass(frozen=True)
class Txn:
    """An open LMDB transaction, handed to :class:`~hangarfs.engine.tables.Table` methods so that
    several tables change together; only ``tables.py`` looks inside it."""

    raw: Any


@dataclass(frozen=True)
class EnvSpec:
    path: str
    dbs: tuple[str, ...]
    sync: bool


class LmdbEnv:
    """An open LMDB environment with its named databases."""

    def __init__(self, spec: EnvSpec) -> None:
        self.spec = spec
        os.makedirs(spec.path, exist_ok=True)
        # typed Any: values are bytes here (buffers=False), which py-lmdb's stubs cannot express
        self.env: Any = lmdb.open(
            spec.path,
            map_size=MAP_SIZE,
            max_dbs=len(spec.dbs) + 2,
            sync=spec.sync,
            metasync=spec.sync,
            readahead=False,
            max_readers=1022,
            lock=True,
        )
        self.dbs: dict[str, Any] = {name: self.env.open_db(name.encode()) for name in spec.dbs}
        self.pid = os.getpid()
        self.closed = False

    def db(self, name: str) -> Any:
        return self.dbs[name]

    def get(self, db: Any, key: bytes) -> bytes | None:
        """One value in its own read transaction (the hot path of single reads: no wrapper objects)."""
        with self.env.begin(buffers=False) as txn:
            value: bytes | None = txn.get(key, db=db)
            return value

    @contextmanager
    def read(self) -> Iterator[Txn]:
        with self.env.begin(buffers=False) as txn:
            yield Txn(txn)

    @contextmanager
    def write(self) -> Iterator[Txn]:
        """A write transaction: committed when the block exits normally, aborted on an exception."""
        with self.env.begin(write=True) as txn:
            yield Txn(txn)

    def sync(self) -> None:
        self.env.sync(True)

    def copy_compacted(self, path: str) -> None:
        """Write a compacted copy of the environment into the (empty) directory ``path``."""
        self.env.copy(path, compact=True)

    def close(self) -> None:
        self.closed = True
        self.env.close()


def read_every_entry(path: str) -> Iterator[tuple[str, bytes, bytes]]:
    """(database name, key, value) of every entry of an environment, opened read-only and unlocked
    (for checking an environment that may be damaged, in a process of its own)."""
    env = lmdb.open(path, readonly=True, lock=False, max_dbs=16, subdir=True)
    try:
        with env.begin() as txn:
            names = [k for k, _ in txn.cursor()]
            for name in names:
                db = env.open_db(name, txn=txn, create=False)
                for k, v in txn.cursor(db=db):
                    yield name.decode(), k, v
    finally:
        env.close()


class _Registry:
    """Process-wide table of open environments (LMDB requires one handle per file per process).

    Environments are reference counted: each ``open`` must be matched by a ``release``; the last
    release closes the environment (each reserves a large address range, so they must not pile up).

    Garbage-collection finalizers never take the lock: a finalizer may run in any thread at any
    allocation, including one made while this very thread holds the lock (inside ``lmdb.open``), so
    it only queues its environments (``release_soon``); the next ``open`` or ``release`` releases them.
    """

    def __init__(self) -> None:
        self._envs: dict[tuple[str, int], LmdbEnv] = {}
        self._refs: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._doomed: deque[LmdbEnv] = deque()  # appended by finalizers: atomic, never blocks

    def release_soon(self, envs: list[LmdbEnv]) -> None:
        """Queue environments for release (safe in a finalizer: no lock, no I/O)."""
        self._doomed.extend(envs)
        envs.clear()

    def _release_doomed(self) -> None:
        while True:
            try:
                env = self._doomed.popleft()
            except IndexError:
                return
            self._release_one(env)

    def open(self, spec: EnvSpec) -> LmdbEnv:
        self._release_doomed()
        key = (os.path.realpath(spec.path), os.getpid())
        with self._lock:
            env = self._envs.get(key)
            if env is None:
                self._close_inherited(key[0])
                env = LmdbEnv(spec)
                self._envs[key] = env
            self._refs[key] = self._refs.get(key, 0) + 1
            return env

    def _close_inherited(self, path: str) -> None:
        """In a forked child (a DataLoader worker, a multiprocessing pool), close the parent's handle
        on ``path`` before opening this process's own: LMDB forbids using an environment across
        fork(), and py-lmdb refuses to open a file that an inherited handle still holds. Called with
        the lock held; closing touches only this process's reader slots and file descriptors."""
        pid = os.getpid()
        for key in [k for k in self._envs if k[0] == path and k[1] != pid]:
            env = self._envs.pop(key)
            self._refs.pop(key, None)
            env.close()

    def release(self, env: LmdbEnv) -> None:
        self._release_doomed()
        self._release_one(env)

    def _release_one(self, env: LmdbEnv) -> None:
        key = (os.path.realpath(env.spec.path), env.pid)
        with self._lock:
            if self._envs.get(key) is not env:
                return  # closed already (forget/close_all)
            self._refs[key] -= 1
            if self._refs[key] > 0:
                return
            del self._envs[key], self._refs[key]
        env.close()

    def release_all(self, envs: list[LmdbEnv]) -> None:
        while envs:
            self.release(envs.pop())

    def close_all(self) -> None:
        """Close every environment this process opened (before fork(): LMDB must not cross it)."""
        self._doomed.clear()
        with self._lock:
            envs = [e for (_, pid), e in self._envs.items() if pid == os.getpid()]
            self._envs.clear()
            self._refs.clear()
        for env in envs:
            env.close()

    def forget(self, path: str) -> None:
        """Close and drop an environment (used when a repository is deleted or re-initialised)."""
        self._release_doomed()
        key = (os.path.realpath(path), os.getpid())
        with self._lock:
            env = self._envs.pop(key, None)
            self._refs.pop(key, None)
        if env is not None:
            env.close()


ENVIRONMENTS = _Registry()
