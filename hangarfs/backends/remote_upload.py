"""Uploading blobs to a remote: packs first, then the index that names them.

``upload_blobs`` streams ``(digest, bytes)`` into packs of one group (``build_packs``), uploads up to
``concurrency`` packs at a time (create-only, named by their hash, so that a repeated upload of the
same pack is a no-op), and after every ``index_every`` uploaded packs, and at the end, writes a
partial index file naming exactly the packs whose upload *completed*. An index therefore never
names a pack that is not there, and an interrupted upload leaves only unnamed packs behind, which
the next upload either re-creates (same bytes, same name) or adopts with ``recover_orphans``.

Digests the remote already names, and repeats within the stream, are skipped, checked a few
thousand at a time against ``RemoteIndex.missing`` (vectorised), not one by one.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from hangarfs.backends.objstore.base import ObjectStore
from hangarfs.backends.packs import DEFAULT_PACK_SIZE, SealedPack, build_packs
from hangarfs.backends.remote_index import IndexFile, PackInfo, index_name, parse_index, serialize_index
from hangarfs.errors_remote import RemoteObjectExists, RemoteWriteOutcomeUnknown

INDEX_PREFIX = 'index/'
FILTER_BATCH = 4096


@dataclass(frozen=True)
class UploadReport:
    """What one upload did: blobs and bytes sent, blobs skipped (the remote had them), packs and
    index files written (their keys)."""

    blobs_written: int
    bytes_written: int
    blobs_skipped: int
    packs: tuple[PackInfo, ...]
    index_keys: tuple[str, ...]


def put_immutable(store: ObjectStore, key: str, data: bytes | bytearray) -> None:
    """Write a content-addressed object: create-only where the store can, and a create that finds
    the object there already is success (same name, same bytes). An answer lost in transit is
    retried: the retry then finds the object, or writes it."""
    for attempt in range(1, store.retry.attempts + 1):
        try:
            if store.capabilities.conditional_create:
                store.put_create(key, data)
            else:
                store.put(key, data)  # same name, same bytes: an overwrite is harmless
            return
        except RemoteObjectExists:
            return
        except RemoteWriteOutcomeUnknown:
            if attempt == store.retry.attempts:
                raise
            store.backoff_sleep(attempt)


def write_index(store: ObjectStore, packs: list[tuple[PackInfo, np.ndarray]]) -> tuple[str, IndexFile]:
    """Write one partial index file for ``packs``; returns its key and parsed form."""
    data = serialize_index(packs)
    key = INDEX_PREFIX + index_name(data)
    put_immutable(store, key, data)
    return key, parse_index(data, store.object_url(key))


def _unique_missing(
    blobs: Iterable[tuple[bytes, bytes | memoryview]],
    missing: Callable[[list[bytes]], list[bytes]],
    counts: list[int],
) -> Iterator[tuple[bytes, bytes | memoryview]]:
    """The blobs whose digest ``missing`` reports and that were not seen before; counts[0] skipped."""
    seen: set[bytes] = set()
    it = iter(blobs)
    while batch := list(itertools.islice(it, FILTER_BATCH)):
        wanted = set(missing([d for d, _ in batch]))
        for digest, data in batch:
            if digest in wanted and digest not in seen:
                seen.add(digest)
                yield digest, data
            else:
                counts[0] += 1


def upload_blobs(
    store: ObjectStore,
    key_of: Callable[[SealedPack], str],
    group: str,
    blobs: Iterable[tuple[bytes, bytes | memoryview]],
    *,
    missing: Callable[[list[bytes]], list[bytes]],
    on_index: Callable[[str, IndexFile], None],
    pack_size: int = DEFAULT_PACK_SIZE,
    index_every: int = 16,
    concurrency: int = 4,
    progress: Callable[[int], None] | None = None,
) -> UploadReport:
    """Upload ``blobs`` of ``group`` as packs and index them; see the module docstring.
    ``progress`` is called with the number of bytes of each uploaded pack."""
    skipped = [0]
    done: list[tuple[PackInfo, np.ndarray]] = []  # uploaded, not yet indexed
    all_packs: list[PackInfo] = []
    index_keys: list[str] = []
    written = [0, 0]
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(concurrency + 1)  # packs held in memory at once

    def upload(pack: SealedPack) -> None:
        try:
            key = key_of(pack)
            put_immutable(store, key, pack.data)
            info = PackInfo(key, group, pack.size)
            with lock:
                done.append((info, pack.table))
                all_packs.append(info)
                written[0] += len(pack.table)
                written[1] += int(pack.table['length'].sum())
            if progress is not None:
                progress(pack.size)
        finally:
            slots.release()

    def flush() -> None:
        with lock:
            batch = list(done)
            done.clear()
        if batch:
            key, parsed = write_index(store, batch)
            index_keys.append(key)
            on_index(key, parsed)

    futures: list[Future[None]] = []
    failed = False
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix='hangarfs-upload') as pool:
        try:
            for n, pack in enumerate(
                build_packs(group, _unique_missing(blobs, missing, skipped), pack_size), 1
            ):
                slots.acquire()
                futures.append(pool.submit(upload, pack))
                pending = []
                for f in futures:
                    if f.done():
                        f.result()  # raises the upload's error
                    else:
                        pending.append(f)
                futures = pending
                if n % index_every == 0:
                    flush()  # names the packs uploaded so far; those in flight go in a later one
            for f in futures:
                f.result()
        except BaseException:
            failed = True
            for f in futures:
                f.cancel()
            raise
        finally:
            if failed:
                pool.shutdown(wait=True, cancel_futures=True)
                # index what did arrive, so that the next upload re-uses it (best effort)
                with contextlib.suppress(Exception):
                    flush()
    flush()
    return UploadReport(written[0], written[1], skipped[0], tuple(all_packs), tuple(index_keys))
