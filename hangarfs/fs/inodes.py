"""Inode numbers of the low-level adapter: which node each number the kernel holds stands for.

The low-level FUSE API names every file by a number we choose, and the kernel keeps its page cache,
attributes and names per number. So the numbers carry the caching policy:

- A file's number stands for one *version* of it (its content digest): looking a path up again gives
  the same number while the content is the same, and a new number once it changed. A number never
  changes meaning, so the kernel may cache everything about it for ever, also on a mount that follows
  a branch; a file opened before the branch moved keeps its number and so its bytes.
- A directory's number stands for its path (a shell's working directory stays valid across commits);
  what it lists is whatever the view shows now, and the adapter tells the kernel when that changed.
- In immutable views, the files of a listing get *positional* numbers (the listing's slot and the
  entry's index): a million READDIRPLUS entries cost a list of their names, not a record each.

Every number the kernel holds stays resolvable until the kernel forgets it (``FORGET``). Plain Python,
no FUSE: tested in ``tests/fs/test_inodes.py``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hangarfs.fs.view import Node

ROOT = 1
POSITIONAL = 1 << 63
SLOT_SHIFT = 40
INDEX_MASK = (1 << SLOT_SHIFT) - 1
MAX_SLOTS = (1 << (63 - SLOT_SHIFT)) - 1


class Record:
    """A named inode: its path, and for a file the node (version) it was made for."""

    __slots__ = ('ino', 'is_dir', 'lookups', 'node', 'path')

    def __init__(self, ino: int, path: str, node: Node | None, is_dir: bool) -> None:
        self.ino = ino
        self.path = path
        self.node = node  # files only: the version this number stands for
        self.is_dir = is_dir
        self.lookups = 0


@dataclass
class Listing:
    """The names of one listing of a directory in one immutable state, in order: entry i is number
    (slot, i). ``resolve(subdir/name)`` finds an entry's node in that state (``source`` keeps it)."""

    directory: str
    names: list[str]
    resolve: Callable[[str], Node | None]
    subdir: str
    source: object = None


def join(parent: str, name: str) -> str:
    return parent + name if parent == '/' else parent + '/' + name


def split(path: str) -> tuple[str, str]:
    """(parent path, name) of a path other than the root."""
    parent, _, name = path.rpartition('/')
    return parent or '/', name


class InodeTable:
    """Numbers handed to the kernel, with lookup counts; thread-safe.

    Positional numbers store no node: their listing finds it again in the state it listed.
    """

    def __init__(self, *, node_cache: int = 4096) -> None:
        self._lock = threading.Lock()
        self._records: dict[int, Record] = {}
        self._dirs: dict[str, int] = {}
        self._files: dict[str, int] = {}  # path -> number of its newest version the kernel holds
        self._next = ROOT + 1
        self._listings: list[Listing] = []
        self._listing_of: dict[tuple[str, int], int] = {}
        self._nodes: OrderedDict[int, Node] = OrderedDict()  # positional number -> node (recent ones)
        self._node_cache = node_cache
        root = Record(ROOT, '/', None, True)
        root.lookups = 1  # the kernel never forgets the root
        self._records[ROOT] = root
        self._dirs['/'] = ROOT

    # ------------------------------------------------------------------ named numbers

    def entry(self, path: str, node: Node, *, by_version: bool = True) -> int:
        """The number for ``node`` at ``path``, counted as one more kernel lookup.

        Files get the number they had if their version is the same (``by_version``; otherwise the
        same number whatever the content, for a view whose files change only through the mount).
        """
        with self._lock:
            if node.is_dir:
                ino = self._dirs.get(path)
                rec = self._records.get(ino) if ino is not None else None
            else:
                ino = self._files.get(path)
                rec = self._records.get(ino) if ino is not None else None
                if rec is not None and by_version and not same_version(rec.node, node):
                    rec = None
            if rec is None or rec.is_dir != node.is_dir:
                rec = Record(self._next, path, None if node.is_dir else node, node.is_dir)
                self._next += 1
                self._records[rec.ino] = rec
                (self._dirs if node.is_dir else self._files)[path] = rec.ino
            elif not node.is_dir:
                rec.node = node  # same version: the newest node object (e.g. a staging buffer)
            rec.lookups += 1
            return rec.ino

    def record(self, ino: int) -> Record | None:
        return self._records.get(ino)

    def known_dir(self, path: str) -> int | None:
        """The number the kernel holds for directory ``path``, if any."""
        return self._dirs.get(path)

    def known_file(self, path: str) -> Record | None:
        ino = self._files.get(path)
        return self._records.get(ino) if ino is not None else None

    def paths_under(self, prefix: str) -> list[Record]:
        """Every named record at or below ``prefix`` (for invalidating a subtree)."""
        with self._lock:
            if prefix == '/':
                return list(self._records.values())
            below = prefix + '/'
            return [r for r in self._records.values() if r.path == prefix or r.path.startswith(below)]

    def moved(self, old: str, new: str) -> None:
        """A file or directory was renamed through the mount: its number (and for a directory, every
        number below it) now names the path under ``new``; a file it replaced names nothing."""
        with self._lock:
            if old in self._dirs:
                below = old + '/'
                for table in (self._dirs, self._files):
                    moving = [p for p in table if p == old or p.startswith(below)]
                    for path in moving:
                        self._rename(table, path, new + path[len(old) :])
                return
            self._rename(self._files, old, new)

    def _rename(self, table: dict[str, int], old: str, new: str) -> None:
        ino = table.pop(old, None)
        if ino is None:
            return
        rec = self._records.get(ino)
        if rec is not None:
            rec.path = new
        stale = table.get(new)
        if stale is not None and stale != ino:
            gone = self._records.get(stale)
            if gone is not None:
                gone.path = ''  # the replaced name: its number names nothing now
        table[new] = ino

    def removed(self, path: str) -> None:
        """A name was removed through the mount: a number the kernel still holds names nothing now."""
        with self._lock:
            for table in (self._files, self._dirs):
                ino = table.pop(path, None)
                rec = self._records.get(ino) if ino is not None else None
                if rec is not None and ino != ROOT:
                    rec.path = ''

    def forget(self, ino: int, count: int) -> None:
        if ino & POSITIONAL:
            return  # positional numbers live as long as their listing (immutable views only)
        with self._lock:
            rec = self._records.get(ino)
            if rec is None or ino == ROOT:
                return
            rec.lookups -= count
            if rec.lookups > 0:
                return
            del self._records[ino]
            table = self._dirs if rec.is_dir else self._files
            if table.get(rec.path) == ino:
                del table[rec.path]

    def __len__(self) -> int:
        return len(self._records)

    # ------------------------------------------------------------------ positional numbers

    def listing(self, directory: str, state: Any, subdir: str) -> tuple[int, Listing]:
        """The listing slot of ``directory`` as the immutable view ``state`` shows it (at ``subdir``):
        one per directory and state, filled as it is listed."""
        key = (directory, id(state))
        with self._lock:
            slot = self._listing_of.get(key)
            if slot is None:
                if len(self._listings) >= MAX_SLOTS:
                    raise OverflowError('too many directories listed')
                slot = len(self._listings)
                self._listings.append(Listing(directory, [], state.lookup, subdir, state))
                self._listing_of[key] = slot
            return slot, self._listings[slot]

    def listed_before(self, directory: str, state: Any) -> bool:
        """True when ``directory`` was listed in a state other than ``state`` (a branch moved since)."""
        with self._lock:
            return any(d == directory and sid != id(state) for d, sid in self._listing_of)

    @staticmethod
    def positional(slot: int, index: int) -> int:
        return POSITIONAL | (slot << SLOT_SHIFT) | index

    def _positional(self, ino: int) -> tuple[Listing, str] | None:
        slot, index = (ino & ~POSITIONAL) >> SLOT_SHIFT, ino & INDEX_MASK
        if slot >= len(self._listings):
            return None
        listing = self._listings[slot]
        if index >= len(listing.names):
            return None
        return listing, listing.names[index]

    def positional_path(self, ino: int) -> str | None:
        found = self._positional(ino)
        return join(found[0].directory, found[1]) if found is not None else None

    # ------------------------------------------------------------------ resolving

    def path_of(self, ino: int) -> str | None:
        if ino & POSITIONAL:
            return self.positional_path(ino)
        rec = self._records.get(ino)
        return rec.path if rec is not None and rec.path else None

    def file_node(self, ino: int) -> Node | None:
        """The node of a file number: the version it stands for."""
        if not ino & POSITIONAL:
            rec = self._records.get(ino)
            return rec.node if rec is not None else None
        node = self._nodes.get(ino)
        if node is not None:
            return node
        found = self._positional(ino)
        node = found[0].resolve(join(found[0].subdir, found[1])) if found is not None else None
        if node is not None:
            with self._lock:
                self._nodes[ino] = node
                while len(self._nodes) > self._node_cache:
                    self._nodes.popitem(last=False)
        return node


def same_version(a: Node | None, b: Node) -> bool:
    """True when two nodes have the same bytes (equal non-empty content digests and sizes)."""
    return a is not None and bool(a.version) and a.version == b.version and a.size == b.size
