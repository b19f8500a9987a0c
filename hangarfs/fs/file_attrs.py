"""Modification times and modes of the staging view's files and directories.

Each file has its own stable mtime: the time it was last written (or what ``touch``/``utimensat`` set),
kept with the version (content digest) it was recorded for, so a sample that changes any other way
(a commit elsewhere, a reset) falls back to the default instead of showing a stale time. Files never
written through the mount show the *default*: the time of the commit the staging area started from,
kept across the commits this mount makes (the files they did not touch did not change). ``chmod``
sets a mode the same way. Everything is kept in the staging area (``engine/attr_table.py``), so it
survives an unmount.
"""

from __future__ import annotations

import time

from hangarfs.engine.attr_table import AttrTable, FileAttr
from hangarfs.fs.nodes import Node

# the entry holding (the last commit made here, the default mtime); not a path (those start with '/')
DEFAULT_KEY = 'default'
DIRECTORY = b''  # the version of a directory's entry: any content
PERSIST_BATCH = 1024  # changed entries written together ...
PERSIST_SECONDS = 1.0  # ... or this long after the last write


class FileAttrs:
    """Per-path mtimes and modes, valid while the path holds the version they were recorded for."""

    def __init__(self, table: AttrTable | None, base_commit: str, base_time_ns: int) -> None:
        self._table = table
        self._by_dir: dict[str, dict[str, FileAttr]] = {}
        self._pending: dict[str, FileAttr | None] = {}
        self._persisted = time.monotonic()
        loaded = table.load() if table is not None else {}
        marker = loaded.pop(DEFAULT_KEY, None)
        if marker is not None and base_commit and marker.version == bytes.fromhex(base_commit):
            self.default_ns = marker.mtime_ns  # this mount's own last commit: untouched files kept it
        else:
            self.default_ns = base_time_ns
        for path, attr in loaded.items():
            self._remember(path, attr)

    # ---------------------------------------------------------------- reading

    def get(self, path: str) -> FileAttr | None:
        parent, _, name = path.rpartition('/')
        entries = self._by_dir.get(parent)
        return entries.get(name) if entries else None

    def in_dir(self, path: str) -> dict[str, FileAttr]:
        """Entries recorded for the names in directory ``path`` (often none: the fast path)."""
        return self._by_dir.get(path.rstrip('/'), {})

    def applied(self, path: str, node: Node, version: bytes | None = None) -> Node:
        """``node`` with the mtime and mode recorded for ``path``, if they are for its version."""
        attr = self.get(path)
        return apply(node, attr, version) if attr is not None else node

    # ---------------------------------------------------------------- writing

    def set(
        self,
        path: str,
        version: bytes,
        *,
        mtime_ns: int | None = None,
        mode: int | None = None,
        keep_mode: bool = True,
    ) -> None:
        """Record ``path`` as holding ``version`` since ``mtime_ns`` (default: now) with ``mode``
        (default: the mode it had, if ``keep_mode``)."""
        old = self.get(path)
        if mode is None:
            mode = old.mode if (keep_mode and old is not None) else 0
        attr = FileAttr(version, time.time_ns() if mtime_ns is None else mtime_ns, mode)
        self._remember(path, attr)
        self._pending[path] = attr

    def touch_dir(self, path: str) -> None:
        """A directory's entries changed: it gets a new mtime."""
        self.set(path.rstrip('/') or '/', DIRECTORY)

    def forget(self, path: str) -> None:
        parent, _, name = path.rpartition('/')
        entries = self._by_dir.get(parent)
        if entries is not None and entries.pop(name, None) is not None:
            self._pending[path] = None

    def move_tree(self, old: str, new: str) -> None:
        """A directory was renamed: the entries below ``old`` now belong to ``new``."""
        for parent in [d for d in self._by_dir if d == old or d.startswith(old + '/')]:
            moved = new + parent[len(old) :]
            for name, attr in self._by_dir.pop(parent).items():
                self._pending[f'{parent}/{name}'] = None
                self._remember(f'{moved}/{name}', attr)
                self._pending[f'{moved}/{name}'] = attr
        own = self.get(old)
        if own is not None:
            self.forget(old)
            self._remember(new, own)
            self._pending[new] = own

    def forget_tree(self, path: str) -> None:
        """A directory was removed: forget it and everything below it."""
        for parent in [d for d in self._by_dir if d == path or d.startswith(path + '/')]:
            for name in self._by_dir.pop(parent):
                self._pending[f'{parent}/{name}'] = None
        self.forget(path)

    def committed(self, commit: str) -> None:
        """This mount made ``commit``: files it did not touch keep the default mtime."""
        self._pending[DEFAULT_KEY] = FileAttr(bytes.fromhex(commit), self.default_ns, 0)

    def reset(self, base_time_ns: int) -> None:
        """The staging area was reset: files not written since show the new base's time."""
        self.default_ns = base_time_ns
        self._pending[DEFAULT_KEY] = None

    def persist(self, *, now: bool = False) -> None:
        """Write what changed to the staging area (one transaction): with ``now``, or once enough has
        changed or enough time passed. (Losing the last changes to a crash is harmless: a staged sample
        without a recorded mtime gets the next mount's start time, see ``StagingView``.)"""
        if not self._pending or self._table is None:
            self._pending.clear()
            return
        if (
            not now
            and len(self._pending) < PERSIST_BATCH
            and time.monotonic() - self._persisted < PERSIST_SECONDS
        ):
            return
        self._persisted = time.monotonic()
        pending, self._pending = self._pending, {}
        self._table.put_many({p: a for p, a in pending.items() if a is not None})
        self._table.delete_many([p for p, a in pending.items() if a is None])

    def _remember(self, path: str, attr: FileAttr) -> None:
        parent, _, name = path.rpartition('/')
        self._by_dir.setdefault(parent, {})[name] = attr


def apply(node: Node, attr: FileAttr, version: bytes | None = None) -> Node:
    """``node`` with ``attr``'s mtime and mode when ``attr`` was recorded for its version."""
    if node.is_dir:
        if attr.version != DIRECTORY:
            return node
    elif attr.version != (node.version if version is None else version):
        return node
    return Node(
        node.kind,
        node.size,
        attr.mtime_ns,
        node.version,
        node.content,
        node.sample,
        node.buffer,
        node.entries,
        attr.mode or None,
    )
