"""One wrapper per LMDB database: the only code that touches LMDB transactions' keys and cursors.

A :class:`Table` is a named database of one environment. Every method works in a transaction of its
own, or in the caller's ``txn`` (from ``env.read()`` / ``env.write()``) when several tables must change
together, as a commit does. Scans are iterators that hold their read transaction in a ``with`` block;
:meth:`Table.scan` closes it deterministically for callers that stop early.
"""

from __future__ import annotations

import struct
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from hangarfs.engine.lmdbenv import LmdbEnv, Txn

_COUNTER = struct.Struct('<q')


class Table:
    """The database ``name`` of an environment: bytes -> bytes, sorted by key."""

    def __init__(self, env: LmdbEnv, name: str) -> None:
        self.env = env
        self.name = name

    def _db(self) -> Any:
        return self.env.db(self.name)

    # ------------------------------------------------------------------ reading

    def get(self, key: bytes, *, txn: Txn | None = None) -> bytes | None:
        if txn is not None:
            value: bytes | None = txn.raw.get(key, db=self._db())
            return value
        return self.env.get(self._db(), key)

    def get_many(self, keys: Sequence[bytes], *, txn: Txn | None = None) -> dict[bytes, bytes]:
        """The present keys among ``keys`` with their values (one cursor pass)."""
        if not keys:
            return {}
        if txn is not None:
            return dict(txn.raw.cursor(db=self._db()).getmulti(keys))
        with self.env.read() as own:
            return dict(own.raw.cursor(db=self._db()).getmulti(keys))

    def count(self, *, txn: Txn | None = None) -> int:
        """Number of entries (O(1))."""
        if txn is not None:
            return int(txn.raw.stat(self._db())['entries'])
        with self.env.read() as own:
            return int(own.raw.stat(self._db())['entries'])

    def iter(
        self, prefix: bytes = b'', *, start: bytes | None = None, keys_only: bool = False
    ) -> Generator[tuple[bytes, bytes], None, None]:
        """(key, value) pairs whose key starts with ``prefix``, from ``prefix + start``, in key order.

        The read transaction stays open until the iterator is exhausted or closed (``scan`` closes it
        for you); with ``keys_only`` the values are ``b''``.
        """
        with self.env.read() as own:
            cur = own.raw.cursor(db=self._db())
            if not cur.set_range(prefix + (start or b'')):
                return
            if keys_only:
                for k in cur.iternext(keys=True, values=False):
                    if not k.startswith(prefix):
                        return
                    yield k, b''
                return
            for k, v in cur:
                if not k.startswith(prefix):
                    return
                yield k, v

    @contextmanager
    def scan(
        self, prefix: bytes = b'', *, start: bytes | None = None, keys_only: bool = False
    ) -> Iterator[Iterator[tuple[bytes, bytes]]]:
        """``with table.scan(prefix) as items:`` the iterator of :meth:`iter`, closed on exit."""
        items = self.iter(prefix, start=start, keys_only=keys_only)
        try:
            yield items
        finally:
            items.close()

    def items(self, prefix: bytes = b'', *, txn: Txn | None = None) -> list[tuple[bytes, bytes]]:
        """Every (key, value) under ``prefix``, read in one transaction."""
        if txn is None:
            with self.env.read() as own:
                return self.items(prefix, txn=own)
        out: list[tuple[bytes, bytes]] = []
        cur = txn.raw.cursor(db=self._db())
        if cur.set_range(prefix):
            for k, v in cur:
                if not k.startswith(prefix):
                    break
                out.append((k, v))
        return out

    def first_keys_by_separator(self, sep: bytes) -> list[bytes]:
        """The distinct parts before ``sep`` of every key (skips ahead past each group: O(groups))."""
        out: list[bytes] = []
        with self.env.read() as own:
            cur = own.raw.cursor(db=self._db())
            if not cur.first():
                return out
            while True:
                k = cur.key()
                head = k[: k.index(sep)]
                out.append(head)
                if not cur.set_range(head + bytes([sep[0] + 1])):
                    return out

    # ------------------------------------------------------------------ writing

    def put(self, key: bytes, value: bytes, *, txn: Txn | None = None, overwrite: bool = True) -> bool:
        """Store ``value``; with ``overwrite=False`` an existing value is kept. True if written."""
        if txn is not None:
            return bool(txn.raw.put(key, value, db=self._db(), overwrite=overwrite))
        with self.env.write() as own:
            return bool(own.raw.put(key, value, db=self._db(), overwrite=overwrite))

    def put_many(
        self, items: Iterable[tuple[bytes, bytes]], *, txn: Txn | None = None, overwrite: bool = True
    ) -> None:
        """Store many pairs with one cursor (sorted input is fastest)."""
        pairs = list(items)
        if not pairs:
            return
        if txn is not None:
            txn.raw.cursor(db=self._db()).putmulti(pairs, overwrite=overwrite)
            return
        with self.env.write() as own:
            own.raw.cursor(db=self._db()).putmulti(pairs, overwrite=overwrite)

    def delete(self, key: bytes, *, txn: Txn | None = None) -> bool:
        """Remove ``key``; True if it was there."""
        if txn is not None:
            return bool(txn.raw.delete(key, db=self._db()))
        with self.env.write() as own:
            return bool(own.raw.delete(key, db=self._db()))

    def delete_many(self, keys: Iterable[bytes], *, txn: Txn) -> None:
        db = self._db()
        for key in keys:
            txn.raw.delete(key, db=db)

    def delete_prefix(self, prefix: bytes, *, txn: Txn) -> int:
        """Remove every key starting with ``prefix``; returns how many."""
        cur = txn.raw.cursor(db=self._db())
        n = 0
        if cur.set_range(prefix):
            while cur.key().startswith(prefix):
                if not cur.delete():
                    break
                n += 1
        return n

    def clear(self, *, txn: Txn) -> None:
        """Remove every entry (the database itself stays)."""
        txn.raw.drop(self._db(), delete=False)

    # ------------------------------------------------------------------ counters

    def get_int(self, key: bytes, *, txn: Txn | None = None) -> int:
        """A signed 64-bit counter stored under ``key`` (0 when absent)."""
        v = self.get(key, txn=txn)
        return int(_COUNTER.unpack(v)[0]) if v else 0

    def add_int(self, key: bytes, delta: int, *, txn: Txn) -> int:
        """Add ``delta`` to the counter under ``key``; returns the new value."""
        value = self.get_int(key, txn=txn) + delta
        txn.raw.put(key, _COUNTER.pack(value), db=self._db())
        return value


class Tables:
    """Every table of one environment, by name (``tables['objects']``)."""

    def __init__(self, env: LmdbEnv, names: Sequence[str]) -> None:
        self.env = env
        self._tables = {name: Table(env, name) for name in names}

    def __getitem__(self, name: str) -> Table:
        return self._tables[name]
