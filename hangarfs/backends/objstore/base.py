"""The object-store interface every remote is built on: bytes under string keys, nothing more.

An ``ObjectStore`` is rooted at a URL (``s3://bucket/team/mnist``, ``/mnt/nfs/mnist.remote``, any fsspec
URL) and offers eight operations on keys below it::

    get(key) -> bytes                       get_versioned(key) -> (bytes, version)
    get_ranges(key, [(start, stop), ...])   head(key) -> ObjectInfo         list(prefix) -> [ObjectInfo]
    put(key, data)            (overwrite)   put_create(key, data)   (create-only; RemoteObjectExists)
    put_if_match(key, data, version)        (compare-and-swap; RemotePreconditionFailed)
    delete(key)

A *version* is an opaque token that changes whenever the bytes change (the S3 ETag; a content hash
on a directory). ``capabilities`` says which conditional writes are real; a store without them
refuses conditional writes unless it was opened with ``unsafe_single_writer=True``.

Every operation raises a typed error from ``hangarfs.errors`` whose message names the object's URL
and the cause: ``RemoteObjectNotFound``, ``RemoteObjectExists``, ``RemotePreconditionFailed``,
``RemoteAccessDenied``, ``RemoteRequestError``, ``RemoteUnreachable``. Transport failures and server
errors (5xx, 429, 503 SlowDown) are retried with exponential backoff and jitter, a bounded number of
times (``RetryPolicy``); then ``RemoteUnreachable`` says how many attempts were made over how long.

A conditional write is never retried once its request may have reached the server: if the answer
was lost, a retry would report the caller's own landed write as a conflict. It raises
``RemoteWriteOutcomeUnknown`` instead and the caller finds out by reading back (see
``remote_refs``). Only failures to *connect* (the request was never sent) are retried.

Implementations provide single-attempt primitives (``_get``, ``_put``, ...) that raise
``TransientError`` for what may succeed on a retry; this class adds retries, counting and errors.
"""

from __future__ import annotations

import abc
import enum
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from hangarfs.errors_remote import (
    RemoteObjectExists,
    RemoteObjectNotFound,
    RemotePreconditionFailed,
    RemoteUnreachable,
    RemoteWriteOutcomeUnknown,
    UnsafeRemoteWrite,
)

T = TypeVar('T')
Range = tuple[int, int]
#: What a range read returns: bytes, or a zero-copy read-only view of the client's buffer.
Chunk = bytes | memoryview
#: What a write takes.
Payload = bytes | bytearray | memoryview


@dataclass(frozen=True)
class ObjectInfo:
    """One object: its key (relative to the store's root), size in bytes and version token."""

    key: str
    size: int
    version: str | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a store can do atomically; ``description`` says how (shown in errors and reports)."""

    conditional_create: bool
    conditional_update: bool
    description: str


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter, and the network timeouts.

    The defaults give up on a dead endpoint within about two seconds of backoff (5 attempts: 0.1,
    0.2, 0.4, 0.8 s), so that an unreachable remote fails fast; Icechunk's 10 tries up to 3 minutes
    suit batch jobs better and are one ``RetryPolicy(attempts=10, max_backoff=180)`` away.
    """

    attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    connect_timeout: float = 5.0
    #: A transfer that makes no progress for this long fails (and is retried); it is not a limit
    #: on the length of a whole transfer.
    read_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f'expected at least 1 attempt, got {self.attempts} instead')
        for name in ('initial_backoff', 'max_backoff', 'connect_timeout', 'read_timeout'):
            if getattr(self, name) < 0:
                raise ValueError(f'expected {name} >= 0, got {getattr(self, name)} instead')

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): full jitter."""
        cap = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return rng.uniform(cap / 2, cap)


class TransientError(Exception):
    """Raised by a primitive for a failure a retry may fix. ``ambiguous`` is True when a write may
    have been applied all the same (the request was sent and the answer lost or a 5xx came back);
    False when it certainly was not (connection refused, a 409 conflict)."""

    def __init__(self, cause: str, *, ambiguous: bool) -> None:
        self.cause = cause
        self.ambiguous = ambiguous
        super().__init__(cause)


class PutMode(enum.Enum):
    OVERWRITE = 'overwrite'
    CREATE = 'create'
    MATCH = 'match'


@dataclass
class RequestStats:
    """Requests and bytes a store moved, by operation (thread-safe counters; for benchmarks)."""

    requests: dict[str, int] = field(default_factory=dict)
    bytes_up: int = 0
    bytes_down: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, op: str, *, up: int = 0, down: int = 0, n: int = 1) -> None:
        with self._lock:
            self.requests[op] = self.requests.get(op, 0) + n
            self.bytes_up += up
            self.bytes_down += down

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                'requests': dict(sorted(self.requests.items())),
                'total_requests': sum(self.requests.values()),
                'bytes_up': self.bytes_up,
                'bytes_down': self.bytes_down,
                'retries': self.retries,
            }

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_up = self.bytes_down = self.retries = 0


class ObjectStore(abc.ABC):
    """Bytes under keys below ``url``; see the module docstring for the contract."""

    capabilities: Capabilities

    def __init__(self, url: str, *, retry: RetryPolicy | None = None, unsafe_single_writer: bool = False):
        self.url = url.rstrip('/')
        self.retry = retry or RetryPolicy()
        self.unsafe_single_writer = unsafe_single_writer
        self.stats = RequestStats()
        self._rng = random.Random()

    def object_url(self, key: str) -> str:
        return f'{self.url}/{key}'

    # ------------------------------------------------------------------ primitives (one attempt each)

    @abc.abstractmethod
    def _get(self, key: str) -> tuple[bytes, str | None]:
        """Bytes and version of ``key``; RemoteObjectNotFound if absent."""

    @abc.abstractmethod
    def _get_ranges(self, key: str, ranges: Sequence[Range]) -> list[Chunk]:
        """Bytes ``[start, stop)`` for each range; a range past the end comes back short."""

    @abc.abstractmethod
    def _put(self, key: str, data: Payload, mode: PutMode, expected: str | None) -> str | None:
        """Store ``data``; return the new version. CREATE: RemoteObjectExists if present. MATCH:
        RemotePreconditionFailed unless the current version is ``expected``."""

    @abc.abstractmethod
    def _head(self, key: str) -> ObjectInfo:
        """Size and version of ``key``; RemoteObjectNotFound if absent."""

    @abc.abstractmethod
    def _list(self, prefix: str, limit: int | None) -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix``, sorted by key; with ``limit``, at least the
        first ``limit`` of them (a store may stop listing early)."""

    @abc.abstractmethod
    def _delete(self, key: str) -> None:
        """Remove ``key``; absent keys are not an error."""

    def backoff_sleep(self, attempt: int) -> None:
        """Wait as the retry policy says after failed attempt number ``attempt``."""
        time.sleep(self.retry.backoff(attempt, self._rng))

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""

    # ------------------------------------------------------------------ the public operations

    def get(self, key: str) -> bytes:
        data, _ = self.get_versioned(key)
        return data

    def get_versioned(self, key: str) -> tuple[bytes, str | None]:
        data, version = self._retrying(key, lambda: self._get(key))
        self.stats.count('get', down=len(data))
        return data, version

    def get_range(self, key: str, start: int, stop: int) -> bytes:
        return bytes(self.get_ranges(key, [(start, stop)])[0])

    def get_ranges(self, key: str, ranges: Sequence[Range]) -> list[Chunk]:
        if not ranges:
            return []
        for start, stop in ranges:
            if not 0 <= start < stop:
                raise ValueError(f'expected ranges 0 <= start < stop, got ({start}, {stop}) instead')
        out = self._retrying(key, lambda: self._get_ranges(key, ranges))
        self.stats.count('get_range', n=len(ranges), down=sum(len(b) for b in out))
        return out

    def head(self, key: str) -> ObjectInfo:
        info = self._retrying(key, lambda: self._head(key))
        self.stats.count('head')
        return info

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except RemoteObjectNotFound:
            return False
        return True

    def list(self, prefix: str = '', *, limit: int | None = None) -> list[ObjectInfo]:
        """Objects below ``prefix`` (a key prefix, usually ending in '/'), sorted by key."""
        out = self._retrying(prefix or '.', lambda: self._list(prefix, limit))
        self.stats.count('list')
        return out[:limit] if limit is not None else out

    def delete(self, key: str) -> None:
        self._retrying(key, lambda: self._delete(key))
        self.stats.count('delete')

    def put(self, key: str, data: Payload) -> str | None:
        """Write ``data`` at ``key``, replacing what is there (atomic: readers see old or new)."""
        version = self._retrying(key, lambda: self._put(key, data, PutMode.OVERWRITE, None))
        self.stats.count('put', up=len(data))
        return version

    def put_create(self, key: str, data: Payload) -> str | None:
        """Write ``data`` at ``key`` unless something is there (RemoteObjectExists)."""
        if not self.capabilities.conditional_create:
            self._require_opt_in(key, 'create-only writes')
            if self.exists(key):
                raise RemoteObjectExists(self.object_url(key))
            return self.put(key, data)
        version = self._retrying(key, lambda: self._put(key, data, PutMode.CREATE, None), conditional=True)
        self.stats.count('put_create', up=len(data))
        return version

    def put_if_match(self, key: str, data: Payload, expected: str | None) -> str | None:
        """Replace ``key`` only if its version is still ``expected`` (RemotePreconditionFailed)."""
        if not self.capabilities.conditional_update:
            self._require_opt_in(key, 'compare-and-swap updates')
            _, current = self.get_versioned(key)
            if current != expected:
                raise RemotePreconditionFailed(self.object_url(key), expected)
            return self.put(key, data)
        version = self._retrying(key, lambda: self._put(key, data, PutMode.MATCH, expected), conditional=True)
        self.stats.count('put_if_match', up=len(data))
        return version

    # ------------------------------------------------------------------ helpers

    def _require_opt_in(self, key: str, what: str) -> None:
        if not self.unsafe_single_writer:
            raise UnsafeRemoteWrite(
                self.object_url(key),
                f'{self.url} cannot do {what} atomically ({self.capabilities.description}); two writers '
                "could lose each other's updates. If only one process ever writes to this remote, open it "
                'with unsafe_single_writer=True; otherwise use a store with conditional writes '
                '(S3, or a local/NFS directory)',
            )

    def _retrying(self, key: str, attempt: Callable[[], T], *, conditional: bool = False) -> T:
        """Run ``attempt`` with the retry policy; see the module docstring for conditional writes."""
        started = time.monotonic()
        for n in range(1, self.retry.attempts + 1):
            try:
                return attempt()
            except TransientError as err:
                elapsed = time.monotonic() - started
                if conditional and err.ambiguous:
                    raise RemoteWriteOutcomeUnknown(self.object_url(key), err.cause, n, elapsed) from err
                if n == self.retry.attempts:
                    raise RemoteUnreachable(self.object_url(key), err.cause, n, elapsed) from err
                with self.stats._lock:
                    self.stats.retries += 1
                self.backoff_sleep(n)
        raise AssertionError('unreachable')  # pragma: no cover

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.url!r})'
