"""A directory as an object store: a local disk, or a shared NFS mount.

Keys are relative paths below the root. Every write goes to ``.tmp/`` first, is fsynced, then gets
its name atomically, and the directory is fsynced, so that a reader (or a crash) sees the old object
or the new one, never a part:

- overwrite: ``rename`` over the old file;
- create-only: ``link`` to the final name, which fails if the name exists (atomic on NFS too);
- compare-and-swap: under an exclusive ``flock`` on ``.locks/<key>.lock``, compare the current
  version with the expected one, then ``rename``. A process killed while holding the lock drops it.

The version of an object is the xxh3-128 of its bytes. Like the S3 ETag, it is the same for the same
bytes; the refs document carries a generation number so that equal bytes never come back.

``flock`` excludes other processes, and other threads that open their own descriptor, on local file
systems. On NFS, Linux implements ``flock`` with POSIX byte-range locks, which belong to a process,
not a descriptor: a lock table per process (``_PROCESS_LOCKS``) keeps the threads of one process
apart there too. Names starting with ``.`` are never keys, so ``.tmp``/``.locks`` stay out of listings.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import xxhash

from hangarfs.backends.objstore.base import (
    Capabilities,
    Chunk,
    ObjectInfo,
    ObjectStore,
    Payload,
    PutMode,
    Range,
    RetryPolicy,
)
from hangarfs.errors_remote import (
    RemoteAccessDenied,
    RemoteObjectExists,
    RemoteObjectNotFound,
    RemotePreconditionFailed,
    RemoteRequestError,
)

_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def content_version(data: Payload) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalDirStore(ObjectStore):
    capabilities = Capabilities(
        conditional_create=True,
        conditional_update=True,
        description='create-only by link(), compare-and-swap under flock, fsync before rename',
    )

    def __init__(
        self,
        root: str | Path,
        *,
        create: bool = False,
        fsync: bool = True,
        retry: RetryPolicy | None = None,
        unsafe_single_writer: bool = False,
    ) -> None:
        self.root = Path(root).expanduser().absolute()
        super().__init__(str(self.root), retry=retry, unsafe_single_writer=unsafe_single_writer)
        self.fsync = fsync
        if create:
            self.root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ paths

    def _path(self, key: str) -> Path:
        parts = key.split('/')
        if not key or any(p in ('', '.', '..') or p.startswith('.') for p in parts):
            raise ValueError(
                f'expected an object key of /-separated names not starting with ".", got {key!r}'
            )
        return self.root.joinpath(*parts)

    def _tmp_file(self) -> Path:
        tmp = self.root / '.tmp'
        tmp.mkdir(exist_ok=True)
        return tmp / f'{uuid.uuid4().hex}.part'

    def _write_tmp(self, data: Payload) -> Path:
        tmp = self._tmp_file()
        with open(tmp, 'wb') as fh:
            fh.write(data)
            if self.fsync:
                fh.flush()
                os.fsync(fh.fileno())
        return tmp

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Translate OS errors to the store's typed errors, naming the object."""
        try:
            yield
        except FileNotFoundError as err:
            if not self.root.is_dir():
                raise RemoteObjectNotFound(
                    self.object_url(key), f'the directory {self.root} does not exist'
                ) from err
            raise RemoteObjectNotFound(self.object_url(key)) from err
        except PermissionError as err:
            raise RemoteAccessDenied(self.object_url(key), f'{self.object_url(key)}: {err.strerror}') from err
        except IsADirectoryError as err:
            raise RemoteRequestError(self.object_url(key), f'{self.object_url(key)} is a directory') from err

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        locks = self.root / '.locks'
        locks.mkdir(exist_ok=True)
        path = locks / (key.replace('/', '%2F') + '.lock')
        with _PROCESS_LOCKS_GUARD:
            plock = _PROCESS_LOCKS.setdefault(str(path), threading.Lock())
        with plock:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    # ------------------------------------------------------------------ primitives

    def _get(self, key: str) -> tuple[bytes, str | None]:
        path = self._path(key)
        with self._errors(key):
            data = path.read_bytes()
        return data, content_version(data)

    def _get_ranges(self, key: str, ranges: Sequence[Range]) -> list[Chunk]:
        path = self._path(key)
        with self._errors(key):
            fd = os.open(path, os.O_RDONLY)
        try:
            return [os.pread(fd, stop - start, start) for start, stop in ranges]
        finally:
            os.close(fd)

    def _head(self, key: str) -> ObjectInfo:
        data, version = self._get(key)
        return ObjectInfo(key, len(data), version)

    def _list(self, prefix: str, limit: int | None) -> list[ObjectInfo]:
        base, _, _ = prefix.rpartition('/')
        start = self._path(base) if base else self.root
        if not start.is_dir():
            if not self.root.is_dir():
                raise RemoteObjectNotFound(self.url, 'the directory does not exist')
            return []
        out = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
            rel = os.path.relpath(dirpath, self.root)
            for name in filenames:
                if name.startswith('.'):
                    continue
                key = name if rel == '.' else f'{rel.replace(os.sep, "/")}/{name}'
                if key.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        out.append(ObjectInfo(key, os.stat(os.path.join(dirpath, name)).st_size))
        out.sort(key=lambda info: info.key)
        return out

    def _delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError), self._errors(key):
            os.unlink(self._path(key))

    def _put(self, key: str, data: Payload, mode: PutMode, expected: str | None) -> str | None:
        final = self._path(key)
        if not self.root.is_dir():
            raise RemoteObjectNotFound(self.object_url(key), f'the directory {self.root} does not exist')
        with self._errors(key):
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._write_tmp(data)
        try:
            if mode is PutMode.CREATE:
                self._link_create(key, tmp, final)
            elif mode is PutMode.MATCH:
                with self._locked(key):
                    try:
                        current = content_version(final.read_bytes())
                    except FileNotFoundError:
                        current = None
                    if current is None or current != expected:
                        raise RemotePreconditionFailed(self.object_url(key), expected)
                    os.replace(tmp, final)
            else:
                os.replace(tmp, final)
            if self.fsync:
                _fsync_dir(final.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return content_version(data)

    def _link_create(self, key: str, tmp: Path, final: Path) -> None:
        try:
            os.link(tmp, final)
        except FileExistsError as err:
            raise RemoteObjectExists(self.object_url(key)) from err
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            # a file system without hard links: exclusive create under the key's lock instead
            with self._locked(key):
                if final.exists():
                    raise RemoteObjectExists(self.object_url(key)) from err
                os.replace(tmp, final)
