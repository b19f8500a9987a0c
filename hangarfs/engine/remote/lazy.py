"""Reading samples from a remote on demand: what a lazy mount (and ``enable_lazy_reads``) serves.

``LazyReader`` is the store's remote sample reader (``RepoStore.remote_reader``): a read of a sample
whose location is a remote placeholder comes here with the sample's digest and codec, and gets bytes
only after the **whole sample** hashed to its digest:

- from the cache (``sample_cache``) when it holds the sample;
- else from the remote: the index (loaded once, in the background from mount time: one LIST and the
  index files not cached) says which pack and where; a small sample is one range read. When reads
  walk a pack in order (``cp -r``, a loader going through keys), the read also takes the samples that
  follow, in a window that doubles from 256 KiB up to 16 MiB (hf-mount's prefetch), each of them
  verified before it is cached; a random read takes just its sample;
- a big sample (over 8 MiB) is streamed into the cache in 8 MiB parts, 8 requests in flight,
  hashed as it arrives; the first byte is served when the last one is verified, and the rest of the
  file's reads are local (the read-ahead for sequential reads of big samples is the whole sample).

One fetch per sample at a time (concurrent readers of a sample wait for the first). A remote that
does not answer is marked offline for a few seconds after the failure, which is logged once: reads
of samples not in the cache then fail at once (the mount answers EIO) instead of waiting on the
network again, and the remote is tried afresh after the pause. Requests use short timeouts and two
attempts, so that no read waits for long.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xxhash

from hangarfs.backends.objstore import RetryPolicy
from hangarfs.backends.pack_reads import read_pack_blobs
from hangarfs.backends.packs import RECORD, RECORD_MAGIC
from hangarfs.backends.remote import parse_remote_location
from hangarfs.backends.remote_index import RemoteIndex
from hangarfs.backends.remote_repo import RemoteRepo
from hangarfs.engine.remote.config import connect, list_remotes
from hangarfs.engine.remote.sample_cache import SampleCache
from hangarfs.engine.samples import SampleCodec
from hangarfs.engine.store import RepoStore
from hangarfs.errors_remote import RemoteCorrupt, RemoteObjectNotFound, RemoteUnreachable

log = logging.getLogger('hangarfs.remote')

BIG_SAMPLE = 8 << 20
PART = 8 << 20
PARTS_IN_FLIGHT = 8
PREFETCH_FIRST = 256 << 10
PREFETCH_MAX = 16 << 20
#: Short timeouts and two attempts: a lazy read must never wait long on a dead endpoint.
LAZY_RETRY = RetryPolicy(
    attempts=2, initial_backoff=0.05, max_backoff=0.2, connect_timeout=2.0, read_timeout=10.0
)
OFFLINE_PAUSE = 5.0
DEFAULT_CACHE_SIZE = 10 << 30
LOCK_STRIPES = 64


@dataclass
class _Remote:
    """What the reader holds of one remote: the open remote, its index, its packs' tables."""

    name: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    remote: RemoteRepo | None = None
    index: RemoteIndex | None = None
    packs: dict[str, np.ndarray] = field(default_factory=dict)
    offline_until: float = 0.0
    reason: str = ''
    url: str = ''


class LazyReader:
    """Serves reads of remote-only samples, verified and cached; see the module docstring."""

    def __init__(
        self,
        store: RepoStore,
        cache: SampleCache,
        *,
        retry: RetryPolicy = LAZY_RETRY,
        offline_pause: float = OFFLINE_PAUSE,
        prefetch: bool = True,
    ) -> None:
        self.store = store
        self.cache = cache
        self.retry = retry
        self.offline_pause = offline_pause
        self.prefetch = prefetch
        self._remotes: dict[str, _Remote] = {}
        self._lock = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(LOCK_STRIPES)]
        self._sequence: dict[str, tuple[int, int, int]] = {}  # pack -> (last start, end, window)
        self.fetched = 0
        self.fetched_bytes = 0
        self.requests = 0

    # ------------------------------------------------------------------ setup

    def warm(self, names: Iterable[str] | None = None) -> threading.Thread:
        """Load the remotes' indexes in the background (a mount calls this as it starts)."""
        chosen = list(names) if names is not None else [r.name for r in list_remotes(self.store)]

        def run() -> None:
            for name in chosen:
                try:
                    self._ready(self._state(name))
                except Exception as err:  # logged by _ready; the reads will say it again
                    log.debug('warming remote %r failed: %s', name, err)

        thread = threading.Thread(target=run, name='hangarfs-lazy-warm', daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        with self._lock:
            states = list(self._remotes.values())
            self._remotes.clear()
        for st in states:
            if st.remote is not None:
                st.remote.close()

    def _state(self, name: str) -> _Remote:
        with self._lock:
            st = self._remotes.get(name)
            if st is None:
                st = self._remotes[name] = _Remote(name)
            return st

    def _ready(self, st: _Remote, *, refresh: bool = False) -> tuple[RemoteRepo, RemoteIndex]:
        """The open remote and its index (opened, or loaded again with ``refresh``)."""
        with st.lock:
            now = time.monotonic()
            if now < st.offline_until:
                raise RemoteUnreachable(
                    st.url or st.name,
                    f'{st.reason}; remote {st.name!r} did not answer {self.offline_pause:.0f} s ago and '
                    f'is tried again in {st.offline_until - now:.1f} s (reads of samples not cached fail '
                    'until it answers)',
                    0,
                    0.0,
                )
            try:
                if st.remote is None:
                    st.remote = connect(self.store, st.name, retry=self.retry)
                    st.url = st.remote.url
                if st.index is None or refresh:
                    index = st.remote.known_digests(refresh=refresh)
                    st.packs = {key: table for key, table in index.group_tables()}
                    st.index = index
                    log.info(
                        'remote %r: index of %d samples in %d packs loaded',
                        st.name,
                        len(index),
                        len(st.packs),
                    )
                return st.remote, st.index
            except RemoteUnreachable as err:
                self._offline(st, err)
                raise

    def _offline(self, st: _Remote, err: RemoteUnreachable) -> None:
        st.offline_until = time.monotonic() + self.offline_pause
        st.reason = str(err)
        log.warning(
            'remote %r is unreachable (%s): reads of samples not in the cache fail (EIO) for %.0f s, '
            'then it is tried again',
            st.name,
            err,
            self.offline_pause,
        )

    # ------------------------------------------------------------------ reading

    def read_range(
        self, digest: bytes, location: bytes, codec: SampleCodec, ref: bytes, start: int, stop: int
    ) -> bytes:
        """Bytes ``[start, stop)`` of the sample, verified (the RemoteSampleReader of a store)."""

        def check(path: Path) -> bool:
            h = codec.digest_hasher(ref)
            with open(path, 'rb') as fh:
                while chunk := fh.read(PART):
                    h.update(chunk)
            return bool(h.digest() == digest)

        data = self.cache.read(digest, start, stop, check)
        if data is not None:
            return data
        name = parse_remote_location(location).remote
        with self._stripes[digest[0] % LOCK_STRIPES]:
            data = self.cache.read(digest, start, stop, check)  # fetched meanwhile by another reader
            if data is not None:
                return data
            whole = self._fetch(self._state(name), digest, codec, ref)
        if whole is not None:
            return whole[start:stop]
        self.cache.pin(digest)  # a big sample, streamed into the cache: read it there
        try:
            data = self.cache.read(digest, start, stop, check)
        finally:
            self.cache.unpin(digest)
        if data is None:
            raise RemoteCorrupt(str(self.cache.path(digest)), 'the cached sample vanished while it was read')
        return data

    def _fetch(self, st: _Remote, digest: bytes, codec: SampleCodec, ref: bytes) -> bytes | None:
        """Fetch a sample: its bytes (a small one), or None once a big one is in the cache."""
        remote, index = self._ready(st)
        entry = index.lookup(digest)
        if entry is None:  # pushed after the index was read?
            remote, index = self._ready(st, refresh=True)
            entry = index.lookup(digest)
        if entry is None:
            raise RemoteCorrupt(
                remote.url, 'the remote holds no data for this sample (no index file names it)', digest=digest
            )
        try:
            if entry.length > BIG_SAMPLE:
                self._fetch_big(
                    remote, entry.pack, entry.offset, entry.length, entry.checksum, digest, codec, ref
                )
                return None
            return self._fetch_small(st, remote, entry.pack, entry.offset, digest, codec, ref)
        except RemoteUnreachable as err:
            self._offline(st, err)
            raise
        except RemoteObjectNotFound as err:
            raise RemoteCorrupt(
                err.url, 'a pack the index names is missing from the remote', digest=digest
            ) from err

    def _window(self, pack: str, offset: int, codec: SampleCodec) -> int:
        """How many bytes past this sample to take: 0 for a random read, doubling along a pack."""
        verifiable = codec.kind != 'ndarray' or not codec.variable  # neighbours' digests need no ref
        if not self.prefetch or not verifiable:
            return 0
        last = self._sequence.get(pack)
        if last is None or offset != last[1]:  # not the record right after the last range fetched
            return 0
        return min(PREFETCH_MAX, max(PREFETCH_FIRST, 2 * last[2]))

    def _fetch_small(
        self,
        st: _Remote,
        remote: RemoteRepo,
        pack: str,
        offset: int,
        digest: bytes,
        codec: SampleCodec,
        ref: bytes,
    ) -> bytes:
        table = st.packs[pack]
        offsets = table['offset']
        i = int(np.searchsorted(offsets, offset))
        window = self._window(pack, offset, codec)
        j = max(i + 1, int(np.searchsorted(offsets, offset + window, 'left'))) if window else i + 1
        rows = table[i:j]
        batch = read_pack_blobs(remote.store, pack, rows)  # every record checked against its checksum
        self.requests += 1
        end = int(rows['offset'][-1]) + RECORD.size + int(rows['length'][-1])
        self._sequence[pack] = (offset, end, window)
        found: bytes | None = None
        for d, view in batch:
            if d == digest:
                if len(view) != codec.nbytes_of(ref) or codec.digest_of_data(view, ref) != digest:
                    raise RemoteCorrupt(
                        remote.store.object_url(pack),
                        f'a sample of column {codec.column!r} does not hash to its digest: the remote holds '
                        'damaged or forged data; nothing was served or cached',
                        digest=digest,
                    )
                found = bytes(view)
                self.cache.put(digest, found)
            elif d not in self.cache and self._neighbour_ok(codec, d, view):
                self.cache.put(d, view)
            self.fetched += 1
            self.fetched_bytes += len(view)
        if found is None:
            raise RemoteCorrupt(
                remote.store.object_url(pack), 'the pack read did not return the sample', digest=digest
            )
        return found

    @staticmethod
    def _neighbour_ok(codec: SampleCodec, digest: bytes, view: memoryview) -> bool:
        """A neighbour is cached only if it verifies as a sample of this column (a pack may hold
        samples of an older schema of the column: those are left out, not an error)."""
        if codec.kind == 'ndarray' and len(view) != codec.fixed_nbytes:
            return False
        return bool(codec.digest_of_data(view, digest) == digest)

    def _fetch_big(
        self,
        remote: RemoteRepo,
        pack: str,
        offset: int,
        length: int,
        checksum: int,
        digest: bytes,
        codec: SampleCodec,
        ref: bytes,
    ) -> None:
        """Stream a big sample into the cache, checked (record header, xxh3, blake2b) as it comes."""
        where = remote.store.object_url(pack)
        end = offset + RECORD.size + length
        ranges = [(a, min(a + PART, end)) for a in range(offset, end, PART)]
        tmp = self.cache.temp_path(digest)
        hasher = codec.digest_hasher(ref)
        xxh = xxhash.xxh3_64()
        try:
            with open(tmp, 'wb') as fh:
                for n in range(0, len(ranges), PARTS_IN_FLIGHT):
                    group = ranges[n : n + PARTS_IN_FLIGHT]
                    chunks = remote.store.get_ranges(pack, group)
                    self.requests += len(group)
                    for (a, b), chunk in zip(group, chunks):
                        view = memoryview(chunk)
                        if len(view) != b - a:
                            raise RemoteCorrupt(
                                where, 'the pack is cut short inside this sample', digest=digest
                            )
                        if a == offset:
                            self._check_header(view, digest, length, checksum, where)
                            view = view[RECORD.size :]
                        hasher.update(view)
                        xxh.update(view)
                        fh.write(view)
            if xxh.intdigest() != checksum:
                raise RemoteCorrupt(
                    where, 'the sample fails its pack checksum: the stored bytes are damaged', digest=digest
                )
            if hasher.digest() != digest:
                raise RemoteCorrupt(
                    where, 'the sample does not hash to its digest: damaged or forged data', digest=digest
                )
            self.cache.pin(digest)
            try:
                self.cache.adopt(digest, tmp, length)
            finally:
                self.cache.unpin(digest)
            self.fetched += 1
            self.fetched_bytes += length
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _check_header(view: memoryview, digest: bytes, length: int, checksum: int, where: str) -> None:
        try:
            magic, _, encoding, _, d, n, c = RECORD.unpack_from(view, 0)
        except struct.error as err:
            raise RemoteCorrupt(where, f'the record header does not read: {err}', digest=digest) from err
        if magic != RECORD_MAGIC or encoding != 0 or d != digest or n != length or c != checksum:
            raise RemoteCorrupt(where, 'the record does not match its index entry', digest=digest)

    def stats(self) -> dict[str, object]:
        return {
            'fetched_samples': self.fetched,
            'fetched_bytes': self.fetched_bytes,
            'requests': self.requests,
            'cache': self.cache.stats(),
        }


def attach_lazy_reader(
    store: RepoStore,
    *,
    cache_dir: str | Path | None = None,
    cache_size: int | str = DEFAULT_CACHE_SIZE,
    retry: RetryPolicy = LAZY_RETRY,
    warm: bool = True,
) -> LazyReader:
    """Make reads of remote-only samples through ``store`` fetch them (verified, cached)."""
    from hangarfs.engine.remote.sample_cache import parse_size

    directory = Path(cache_dir) if cache_dir is not None else store.dir / 'lazy-cache'
    reader = LazyReader(store, SampleCache(directory, parse_size(cache_size)), retry=retry)
    store.remote_reader = reader
    if warm:
        reader.warm()
    return reader
