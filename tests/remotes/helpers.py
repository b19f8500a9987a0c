"""Light helpers shared by the remote tests and the child processes they start (which must start
fast, so this module imports nothing of the test machinery: no moto, no boto3, no pytest)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from hangarfs.backends.remote_repo import RemoteRepo
from hangarfs.backends.remote_upload import UploadReport
from hangarfs.errors_remote import RemoteRefMoved

CRASH_PACK_SIZE = 32 * 1024
CRASH_COMMIT = 'ab' * 32


def blob_set(n: int, size: int = 1000, seed: int = 0) -> list[tuple[bytes, bytes]]:
    """``n`` distinct (digest, bytes) pairs; the digest is the blake2b-256 of the bytes."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        data = rng.integers(0, 256, size + (i % 7), dtype=np.uint8).tobytes()
        out.append((hashlib.blake2b(data, digest_size=32).digest(), data))
    return out


def crash_content() -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    return blob_set(120, 1000, seed=7), blob_set(30, 300, seed=8)


def crash_upload(remote: RemoteRepo, cp: Callable[[str], None]) -> UploadReport:
    """The commit protocol in order, with ``cp(name)`` called after every step; returns the report
    of the data step."""
    data, meta = crash_content()
    remote.concurrency = 1  # one pack at a time, so that the checkpoints fall between packs
    report = remote.write_data_packs('images', data, index_every=2, progress=lambda n: cp('data-pack'))
    cp('data-indexed')
    remote.write_meta_packs(meta, progress=lambda n: cp('meta-pack'))
    cp('meta-indexed')
    remote.put_commit(CRASH_COMMIT, b'the commit record')
    cp('commit')
    remote.update_refs(remote.read_refs(), branches={'master': CRASH_COMMIT}, tags={}, message='push')
    cp('refs')
    return report


def increment(remote: RemoteRepo, times: int) -> int:
    """Add 1 to a counter kept in the refs ``times`` times, retrying lost races; returns the retries."""
    conflicts = 0
    done = 0
    while done < times:
        snap = remote.read_refs()
        value = int(snap.tags.get('counter', '0'))
        try:
            remote.update_refs(snap, branches=dict(snap.branches), tags={'counter': str(value + 1)})
            done += 1
        except RemoteRefMoved:
            conflicts += 1
    return conflicts
