"""The bytes of a file being written through the staging mount, until its ``close()`` stages them.

Kept in memory up to ``SPILL_BYTES``, then in an anonymous temporary file, so a 1 GiB sample costs
no 1 GiB of daemon memory while it is being written. Writes may come at any offset (sparse regions
read as zeros), and the file may be truncated or extended.
"""

from __future__ import annotations

import mmap
import tempfile
import threading
from collections.abc import Callable
from typing import Any

SPILL_BYTES = 8 << 20


class WriteBuffer:
    """``initial`` bytes, or ``size`` bytes that ``loader`` returns when they are first needed (a file
    opened for writing but only ``touch``ed is never read)."""

    def __init__(
        self, initial: bytes = b'', *, size: int = 0, loader: Callable[[], bytes] | None = None
    ) -> None:
        self._file: Any = tempfile.SpooledTemporaryFile(max_size=SPILL_BYTES)  # noqa: SIM115 (closed in close())
        self._lock = threading.Lock()
        self._map: mmap.mmap | None = None  # the last frozen() mapping; unmapped when collected
        self._loader = loader
        self.size = size if loader is not None else 0
        if initial:
            self._file.write(initial)
            self.size = len(initial)

    def _fill(self) -> None:
        """Read the initial bytes in, if they are still to come (the caller holds the lock)."""
        if self._loader is not None:
            loader, self._loader = self._loader, None
            data = loader()
            self._file.seek(0)
            self._file.write(data)
            self.size = len(data)

    def write(self, data: bytes, offset: int) -> int:
        with self._lock:
            self._fill()
            if offset > self.size:  # a hole: zeros, as a filesystem gives
                self._file.seek(self.size)
                self._file.write(bytes(offset - self.size))
            self._file.seek(offset)
            self._file.write(data)
            self.size = max(self.size, offset + len(data))
            return len(data)

    def read(self, size: int, offset: int) -> bytes:
        with self._lock:
            self._fill()
            if offset >= self.size:
                return b''
            self._file.seek(offset)
            chunk: bytes = self._file.read(min(size, self.size - offset))
            return chunk

    def truncate(self, length: int) -> None:
        with self._lock:
            self._fill()
            if length < self.size:
                self._file.truncate(length)
            elif length > self.size:
                self._file.seek(self.size)
                self._file.write(bytes(length - self.size))
            self.size = length

    def frozen(self) -> bytes | memoryview:
        """The bytes without a copy when they are in the spill file: a read-only view of a mapping of
        it, valid until the next write or close (the caller uses it at once)."""
        with self._lock:
            self._fill()
            if not self.size or not getattr(self._file, '_rolled', False):
                self._file.seek(0)
                whole: bytes = self._file.read(self.size)
                return whole
            self._file.flush()
            # MAP_POPULATE maps every page in one call: faulting a GiB in page by page costs seconds
            flags = mmap.MAP_SHARED | getattr(mmap, 'MAP_POPULATE', 0)
            self._map = mmap.mmap(self._file.fileno(), self.size, flags=flags, prot=mmap.PROT_READ)
            return memoryview(self._map)

    def getvalue(self) -> bytes:
        with self._lock:
            self._fill()
            self._file.seek(0)
            everything: bytes = self._file.read(self.size)
            return everything

    def close(self) -> None:
        with self._lock:
            self._file.close()
