"""The lazy reads' cache: samples fetched from a remote, one file each, within a size limit.

A sample lives at ``DIR/<2 hex>/<digest hex>`` and only ever appears there complete and verified:
it is written under a temporary name (or streamed there, for a big one) and renamed once its bytes
hashed to its digest. Files from an earlier run are taken up at start (oldest first in the LRU) and
checked against their digest once, on their first use in this process, so a file that rotted on
disk is dropped and fetched again, never served.

The size limit is kept by evicting the least recently used samples, never one that is *pinned*
(a sample an open file reads: ``pin``/``unpin``, counted). A sample larger than the whole limit is
still kept while pinned or being served, then evicted. Several processes may share a directory:
content addressing makes every file any of them sees valid; a file another process evicted is
simply fetched again.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

Check = Callable[[Path], bool]  # does the file at this path hold the sample? (hashes it)


def parse_size(text: str | int) -> int:
    """``'10G'``, ``'512M'``, ``'1.5GiB'``, ``'100000'`` -> bytes (powers of 1024 for K/M/G/T)."""
    if isinstance(text, int):
        value = text
    else:
        s = str(text).strip().upper().removesuffix('IB').removesuffix('B')
        units = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}
        try:
            value = int(float(s[:-1]) * units[s[-1]]) if s and s[-1] in units else int(s)
        except ValueError as err:
            raise ValueError(f'expected a size like 10G, 512M or 1000000, got {text!r} instead') from err
    if value <= 0:
        raise ValueError(f'expected a size above 0, got {text!r} instead')
    return value


class SampleCache:
    """Verified samples by digest in ``directory``, at most ``limit`` bytes (see the module doc)."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.directory = Path(directory)
        self.limit = limit
        self._lock = threading.Lock()
        self._lru: OrderedDict[bytes, int] = OrderedDict()  # digest -> size, least recent first
        self._checked: set[bytes] = set()  # verified in this process
        self._pins: dict[bytes, int] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        found = []
        for sub in self.directory.iterdir():
            if not sub.is_dir() or len(sub.name) != 2:
                continue
            for f in sub.iterdir():
                if f.name.startswith('.'):
                    f.unlink(missing_ok=True)  # a temporary file left by a killed run
                    continue
                try:
                    st = f.stat()
                    found.append((st.st_atime, bytes.fromhex(f.name), st.st_size))
                except (OSError, ValueError):
                    continue
        for _, digest, size in sorted(found):
            self._lru[digest] = size
            self.bytes += size
        self._evict()

    def path(self, digest: bytes) -> Path:
        h = digest.hex()
        return self.directory / h[:2] / h

    def __contains__(self, digest: object) -> bool:
        with self._lock:
            return digest in self._lru

    # ------------------------------------------------------------------ reading

    def read(self, digest: bytes, start: int, stop: int, check: Check) -> bytes | None:
        """Bytes ``[start, stop)`` of a cached sample, or None when it is not (or no longer) here.
        ``check(path)`` verifies a sample's file the first time this process uses it."""
        with self._lock:
            if digest not in self._lru:
                self.misses += 1
                return None
            self._lru.move_to_end(digest)
            checked = digest in self._checked
        path = self.path(digest)
        try:
            if not checked:
                if not check(path):
                    raise ValueError('damaged')
                with self._lock:
                    self._checked.add(digest)
            with open(path, 'rb') as fh:
                data = os.pread(fh.fileno(), max(0, stop - start), start)
        except (OSError, ValueError):  # evicted by another process, or rotted: fetch it again
            self._forget(digest, unlink=True)
            with self._lock:
                self.misses += 1
            return None
        self.hits += 1
        return data

    # ------------------------------------------------------------------ writing

    def temp_path(self, digest: bytes) -> Path:
        """A fresh temporary file name beside where ``digest`` will live (for streaming a big one)."""
        path = self.path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f'.{path.name}.{uuid.uuid4().hex[:8]}.tmp')

    def put(self, digest: bytes, data: bytes | memoryview) -> None:
        """Keep a verified sample."""
        if digest in self:
            return
        tmp = self.temp_path(digest)
        with open(tmp, 'wb') as fh:
            fh.write(data)
        self.adopt(digest, tmp, len(data))

    def adopt(self, digest: bytes, tmp: Path, size: int) -> None:
        """Move a complete, verified temporary file into place."""
        os.replace(tmp, self.path(digest))
        with self._lock:
            if digest not in self._lru:
                self._lru[digest] = size
                self.bytes += size
            self._checked.add(digest)
        self._evict()

    # ------------------------------------------------------------------ pins and eviction

    def pin(self, digest: bytes) -> None:
        with self._lock:
            self._pins[digest] = self._pins.get(digest, 0) + 1

    def unpin(self, digest: bytes) -> None:
        with self._lock:
            n = self._pins.get(digest, 0) - 1
            if n > 0:
                self._pins[digest] = n
            else:
                self._pins.pop(digest, None)
        self._evict()

    def pinned(self, digest: bytes) -> bool:
        with self._lock:
            return digest in self._pins

    def _forget(self, digest: bytes, *, unlink: bool) -> None:
        with self._lock:
            size = self._lru.pop(digest, None)
            if size is not None:
                self.bytes -= size
            self._checked.discard(digest)
        if unlink:
            self.path(digest).unlink(missing_ok=True)

    def _evict(self) -> None:
        """Drop least recently used, unpinned samples until the cache is within its limit."""
        victims = []
        with self._lock:
            if self.bytes <= self.limit:
                return
            for digest, size in self._lru.items():
                if self.bytes <= self.limit:
                    break
                if digest in self._pins:
                    continue
                victims.append(digest)
                self.bytes -= size
            for digest in victims:
                del self._lru[digest]
                self._checked.discard(digest)
            self.evictions += len(victims)
        for digest in victims:
            self.path(digest).unlink(missing_ok=True)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                'samples': len(self._lru),
                'bytes': self.bytes,
                'limit': self.limit,
                'pinned': len(self._pins),
                'hits': self.hits,
                'misses': self.misses,
                'evictions': self.evictions,
            }
