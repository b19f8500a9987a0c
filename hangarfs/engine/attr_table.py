"""File attributes a front end keeps with the staging area: a modification time and a mode per name.

The staging mount shows samples as files, and tools expect a file's mtime to change when (and only
when) it changes, and ``touch -d``/``chmod`` to stick (``rsync -a``, ``make``, editors). Samples have
neither, so the staging mount records them here, keyed by its own names (paths), each with the
*version* (content digest) it was recorded for: an entry counts only while the file still holds that
version, so no commit, reset or later write can make it lie. The table lives in the staging
environment (unsynced, like the rest of the staging area) and outlives commits.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hangarfs.engine.store import RepoStore
from hangarfs.engine.tables import Table

ATTRS_DB = 'attrs'
_TAIL = struct.Struct('<qI')  # mtime_ns, mode


@dataclass(frozen=True)
class FileAttr:
    version: bytes  # the content this entry was recorded for (b'' for a directory)
    mtime_ns: int
    mode: int  # permission bits; 0 means the default

    def to_bytes(self) -> bytes:
        return _TAIL.pack(self.mtime_ns, self.mode) + self.version

    @classmethod
    def from_bytes(cls, data: bytes) -> FileAttr:
        mtime_ns, mode = _TAIL.unpack_from(data)
        return cls(bytes(data[_TAIL.size :]), mtime_ns, mode)


class AttrTable:
    """Reads and writes the ``attrs`` database of a repository's staging environment."""

    def __init__(self, store: RepoStore) -> None:
        self.store = store

    def _table(self) -> Table:
        return self.store.staging_table(ATTRS_DB)

    def load(self) -> dict[str, FileAttr]:
        return {k.decode(): FileAttr.from_bytes(v) for k, v in self._table().items()}

    def put_many(self, items: dict[str, FileAttr]) -> None:
        self._table().put_many(sorted((name.encode(), attr.to_bytes()) for name, attr in items.items()))

    def delete_many(self, names: list[str]) -> None:
        if not names:
            return
        table = self._table()
        with table.env.write() as txn:
            table.delete_many((name.encode() for name in names), txn=txn)
