"""A lazy mount's view: another view whose remote-only samples are fetched when read.

The fetching itself is the engine's (``hangarfs.engine.remote.lazy``: the store's remote reader,
attached before the view is built, fetches a sample, checks its digest and caches it); listings and
``stat`` come from the trees and need no sample data. This view adds only what a mount knows: which
files are open, so that the cache never evicts a sample an open file reads.
"""

from __future__ import annotations

from typing import Any

from hangarfs.engine.remote.lazy import LazyReader
from hangarfs.fs.nodes import Node
from hangarfs.fs.source import MountSource, Names, Nodes


class LazyView(MountSource):
    """``inner`` with the open-file pins of a lazy reader's cache."""

    def __init__(self, inner: MountSource, reader: LazyReader) -> None:
        self.inner = inner
        self.reader = reader

    def lookup(self, path: str) -> Node | None:
        return self.inner.lookup(path)

    def list_names(self, path: str) -> Names | None:
        return self.inner.list_names(path)

    def list_nodes(self, path: str) -> Nodes | None:
        return self.inner.list_nodes(path)

    def is_immutable(self) -> bool:
        return self.inner.is_immutable()

    def refresh(self) -> None:
        self.inner.refresh()

    def read(self, node: Node, size: int, offset: int) -> bytes:
        return self.inner.read(node, size, offset)

    def describe(self) -> dict[str, Any]:
        # static (the kernel caches mount.json's size); the counts go to the mount's log at unmount
        cache = self.reader.cache
        return {
            **self.inner.describe(),
            'lazy': {'cache_dir': str(cache.directory), 'cache_size': cache.limit},
        }

    def tracks_open_files(self) -> bool:
        return True

    def open_file(self, node: Node) -> Any:
        sample = node.sample
        if sample is None or sample.info.inline is not None:
            return None
        self.reader.cache.pin(sample.info.digest)
        return sample.info.digest

    def release_file(self, token: Any) -> None:
        if token is not None:
            self.reader.cache.unpin(token)
