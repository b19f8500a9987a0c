"""Reading ahead of a sequential reader: the next pieces of a big file made on a worker thread.

Serving a 1 MiB READ of a compressed sample is mostly decompressing (blosc releases the GIL) and
copying into the kernel (``writev`` releases it too). Done one after the other in the request loop they
add up; with the next pieces decompressed on a worker while the loop answers the current one, they
overlap on two cores. Only files of at least ``min_size`` and reads that continue the previous one are
read ahead, ``depth`` pieces at most; a read that matches nothing prepared is read at once, as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from hangarfs.fs.view import Node

Reader = Callable[[Node, int, int], bytes]


class ReadAhead:
    def __init__(self, read: Reader, *, depth: int = 2, workers: int = 2, min_size: int = 8 << 20) -> None:
        self._read = read
        self.depth = depth
        self.min_size = min_size
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix='hangarfs-readahead')
        self._lock = threading.Lock()
        self._ahead: OrderedDict[tuple[bytes, int, int], Future[bytes]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def read(self, node: Node, size: int, offset: int) -> bytes:
        """Bytes ``[offset, offset + size)`` of ``node``, prepared ahead when the reader is sequential."""
        if node.size < self.min_size or node.buffer is not None or not node.version:
            return self._read(node, size, offset)
        key = node.version  # a content digest: equal keys, equal bytes
        with self._lock:
            future = self._ahead.pop((key, offset, size), None)
        if future is not None:
            self.hits += 1
            data = future.result()
        else:
            self.misses += 1
            data = self._read(node, size, offset)
        self._plan(node, key, size, offset + size)
        return data

    def _plan(self, node: Node, key: bytes, size: int, start: int) -> None:
        with self._lock:
            for i in range(self.depth):
                offset = start + i * size
                if offset >= node.size:
                    break
                if (key, offset, size) not in self._ahead:
                    self._ahead[(key, offset, size)] = self._pool.submit(self._read, node, size, offset)
            while len(self._ahead) > 4 * self.depth:  # another reader's leftovers
                self._ahead.popitem(last=False)[1].cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
