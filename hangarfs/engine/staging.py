"""The staging area: the writer's changes, as an overlay on the commit it started from.

Opening a writer costs O(1): the overlay starts where the last writer left it, and everything it does
not mention comes from the base commit's trees. The overlay lives in the ``staging`` LMDB environment:

- ``stage``: ``column \\0 key`` (``+ subkey`` in nested columns) -> ``b'\\x01' + ref`` or tombstone
  ``b'\\x00'``; in a nested column a tombstone on ``column \\0 key`` alone removes the whole sample.
- ``schemas``: column name -> ``b'\\x01' + schema`` (added or changed), ``b'\\x02' + schema`` (a
  committed column removed and added again: it starts empty) or ``b'\\x00'`` (removed).
- ``meta``: metadata key -> ``b'\\x01' + value`` or ``b'\\x00'``.
- ``locations`` / ``bufidx``: small writes kept inline until there are enough to pack into a file.
- ``counts``: per flat column, samples added minus removed, so ``len()`` is O(1).
- ``info``: branch, base commit and generation (see ``commit.py``).
- ``attrs``: modification times and modes the staging mount keeps per file (``attr_table.py``).

Writes arrive as a :class:`WriteBatch` and become durable (against a killed process) in one
transaction. Large batches go straight to a sealed collection file, fsynced before any synced record
names it; small ones are kept inline and packed into a file once a column has buffered enough.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hangarfs.backends import BACKEND_CLASSES, inline_location
from hangarfs.backends.codec import fsync_dir, fsync_paths
from hangarfs.engine import staging_guard
from hangarfs.engine.lmdbenv import ENVIRONMENTS
from hangarfs.engine.records import ColumnSchema
from hangarfs.engine.store import RepoStore

COMPACT_ABOVE_BYTES = 4 << 20  # after a commit, a staging file larger than this is compacted
PACK_MIN_BYTES = 1 << 20  # a batch of at least this many new bytes for a column goes to a file at once
BUFFER_PACK_BYTES = 8 << 20  # buffered small writes of a column are packed once they reach this
SET = b'\x01'
TOMBSTONE = b'\x00'
REPLACED = b'\x02'  # schemas: a committed column removed and added again; it starts empty


def column_prefix(column: str) -> bytes:
    return column.encode('ascii') + b'\x00'


@dataclass
class WriteBatch:
    """Changes not yet durable: gathered in memory inside ``with column:``, flushed at its exit."""

    entries: dict[bytes, bytes] = field(default_factory=dict)  # stage key -> SET+ref | TOMBSTONE
    blobs: dict[bytes, tuple[str, bytes, int]] = field(
        default_factory=dict
    )  # digest -> (column, data, typesize)
    pending_bytes: int = 0

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        self.entries.clear()
        self.blobs.clear()
        self.pending_bytes = 0


@dataclass(frozen=True)
class StageInfo:
    branch: str
    base: str  # commit digest, '' when the branch has no commit yet
    generation: int


class StagingArea:
    """Reads and writes the staging environment of one repository."""

    def __init__(self, store: RepoStore) -> None:
        self.store = store
        self.env = store.staging
        self._dbs = self.env.dbs

    # ------------------------------------------------------------------ info

    def info(self) -> StageInfo:
        with self.env.read() as txn:
            db = self._dbs['info']
            branch = txn.get(b'branch', db=db)
            base = txn.get(b'base', db=db)
            gen = txn.get(b'generation', db=db)
        return StageInfo(
            branch.decode() if branch else '',
            base.decode() if base else '',
            int(gen) if gen else 0,
        )

    def set_info(self, branch: str, base: str, generation: int | None = None) -> None:
        with self.env.write() as txn:
            db = self._dbs['info']
            txn.put(b'branch', branch.encode(), db=db)
            txn.put(b'base', base.encode(), db=db)
            if generation is not None:
                txn.put(b'generation', str(generation).encode(), db=db)

    def is_dirty(self) -> bool:
        with self.env.read() as txn:
            for name in ('stage', 'schemas', 'meta'):
                if txn.stat(self._dbs[name])['entries']:
                    return True
        return False

    def entry_count(self) -> int:
        """How many sample entries the overlay holds (O(1))."""
        with self.env.read() as txn:
            return int(txn.stat(self._dbs['stage'])['entries'])

    # ------------------------------------------------------------------ reading the overlay

    def get(self, skey: bytes) -> bytes | None:
        return self.env.get('stage', skey)

    def get_many(self, skeys: list[bytes]) -> dict[bytes, bytes]:
        with self.env.read() as txn:
            cur = txn.cursor(db=self._dbs['stage'])
            return dict(cur.getmulti(skeys))

    def iter_prefix(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Overlay entries whose stage key starts with ``prefix``, as (rest of key, value), in order."""
        n = len(prefix)
        with self.env.read() as txn:
            cur = txn.cursor(db=self._dbs['stage'])
            if not cur.set_range(prefix + (start or b'')):
                return
            for k, v in cur:
                if not k.startswith(prefix):
                    break
                yield k[n:], v

    def changes(self, prefix: bytes) -> list[tuple[bytes, bytes | None]]:
        """The overlay under ``prefix`` as sorted (rest of key, ref or None for a deletion) pairs."""
        n = len(prefix)
        end = prefix[:-1] + bytes([prefix[-1] + 1])  # the first key after the prefix's range
        out: list[tuple[bytes, bytes | None]] = []
        append = out.append
        with self.env.read() as txn:
            cur = txn.cursor(db=self._dbs['stage'])
            if not cur.set_range(prefix):
                return out
            for k, v in cur:
                if k >= end:
                    break
                append((k[n:], v[1:] if v[0] == 1 else None))
        return out

    def schemas(self) -> dict[str, ColumnSchema | None]:
        out: dict[str, ColumnSchema | None] = {}
        with self.env.read() as txn:
            for k, v in txn.cursor(db=self._dbs['schemas']):
                out[k.decode()] = ColumnSchema.from_bytes(v[1:]) if v[:1] in (SET, REPLACED) else None
        return out

    def replaced(self) -> set[str]:
        """Committed columns removed and added again under the same name (their data starts empty)."""
        with self.env.read() as txn:
            return {k.decode() for k, v in txn.cursor(db=self._dbs['schemas']) if v[:1] == REPLACED}

    def meta(self) -> dict[bytes, bytes | None]:
        with self.env.read() as txn:
            return {k: (v[1:] if v[:1] == SET else None) for k, v in txn.cursor(db=self._dbs['meta'])}

    def count_delta(self, column: str) -> int:
        v = self.env.get('counts', column.encode())
        return struct.unpack('<q', v)[0] if v else 0

    def staged_columns(self) -> set[str]:
        """Columns with staged sample entries."""
        names: set[str] = set()
        with self.env.read() as txn:
            cur = txn.cursor(db=self._dbs['stage'])
            if not cur.first():
                return names
            while True:
                k = cur.key()
                name = k[: k.index(b'\x00')]
                names.add(name.decode())
                if not cur.set_range(name + b'\x01'):
                    break
        return names

    # ------------------------------------------------------------------ writing

    def flush(
        self,
        batch: WriteBatch,
        *,
        schema_of: Callable[[str], ColumnSchema],
        was_present: Callable[[str, list[bytes]], list[bool]],
        schema_changes: dict[str, bytes] | None = None,
        meta_changes: dict[bytes, bytes] | None = None,
    ) -> None:
        """Make a batch durable; ``was_present(column, keys)`` tells which flat keys the base has."""
        new_blobs = self._new_blobs(batch.blobs)
        file_locations: list[tuple[bytes, bytes]] = []
        inline: list[tuple[bytes, bytes]] = []
        buffered: dict[str, int] = {}
        bufidx: list[tuple[bytes, bytes]] = []
        for column, items in new_blobs.items():
            schema = schema_of(column)
            backend = self.store.backends.get(schema.backend)
            total = sum(len(data) for _, data, _ in items)
            if backend.uses_files and total >= PACK_MIN_BYTES:
                result = backend.write_batch(
                    [data for _, data, _ in items], options=schema.backend_options, typesize=items[0][2]
                )
                fsync_paths(result.files)
                file_locations.extend(zip((d for d, _, _ in items), result.locations))
            else:
                for digest, data, _ in items:
                    inline.append((digest, inline_location(data)))
                    if backend.uses_files and data:
                        bufidx.append((column_prefix(column) + digest, len(data).to_bytes(8, 'little')))
                        buffered[column] = buffered.get(column, 0) + len(data)
        if file_locations:
            with self.store.history.write() as txn:
                txn.cursor(db=self.store.history.db('locations')).putmulti(file_locations)
        deltas = self._count_deltas(batch, schema_of, was_present)
        entries = sorted(batch.entries.items())
        with self.env.write() as txn:
            if entries:
                txn.cursor(db=self._dbs['stage']).putmulti(entries)
            if inline:
                txn.cursor(db=self._dbs['locations']).putmulti(inline)
            if bufidx:
                txn.cursor(db=self._dbs['bufidx']).putmulti(bufidx)
            counts = self._dbs['counts']
            for column, d in deltas.items():
                if d:
                    old = txn.get(column.encode(), db=counts)
                    txn.put(
                        column.encode(),
                        struct.pack('<q', (struct.unpack('<q', old)[0] if old else 0) + d),
                        db=counts,
                    )
            for column, n in buffered.items():
                key = b'buffered:' + column.encode()
                old = txn.get(key, db=counts)
                txn.put(key, struct.pack('<q', (struct.unpack('<q', old)[0] if old else 0) + n), db=counts)
            for name, value in (schema_changes or {}).items():
                txn.put(name.encode(), value, db=self._dbs['schemas'])
            for mkey, value in (meta_changes or {}).items():
                txn.put(mkey, value, db=self._dbs['meta'])
        batch.clear()
        for column in buffered:
            if self.buffered_bytes(column) >= BUFFER_PACK_BYTES:
                self.pack(column, schema_of(column))

    def _new_blobs(
        self, blobs: dict[bytes, tuple[str, bytes, int]]
    ) -> dict[str, list[tuple[bytes, bytes, int]]]:
        """Blobs whose digest is stored nowhere yet, grouped by column."""
        if not blobs:
            return {}
        digests = list(blobs)
        with self.store.history.read() as txn:
            known = {k for k, _ in txn.cursor(db=self.store.history.db('locations')).getmulti(digests)}
        rest = [d for d in digests if d not in known]
        if rest:
            with self.env.read() as txn:
                if txn.stat(self._dbs['locations'])['entries']:  # (often empty: right after a commit)
                    known.update(k for k, _ in txn.cursor(db=self._dbs['locations']).getmulti(rest))
        out: dict[str, list[tuple[bytes, bytes, int]]] = {}
        for d in digests:
            if d not in known:
                column, data, typesize = blobs[d]
                out.setdefault(column, []).append((d, data, typesize))
        return out

    def _count_deltas(
        self,
        batch: WriteBatch,
        schema_of: Callable[[str], ColumnSchema],
        was_present: Callable[[str, list[bytes]], list[bool]],
    ) -> dict[str, int]:
        """Samples added minus removed by the batch, per flat column."""
        if not batch.entries:
            return {}
        per_column: dict[str, list[tuple[bytes, bytes]]] = {}
        for skey, value in batch.entries.items():
            raw_name, _, key = skey.partition(b'\x00')
            per_column.setdefault(raw_name.decode(), []).append((key, value))
        # keys of columns with nothing staged yet need no lookup in the staging area
        lookup = [
            column_prefix(c) + k
            for c, items in per_column.items()
            if next(self.iter_prefix(column_prefix(c)), None) is not None
            for k, _ in items
        ]
        staged = self.get_many(lookup) if lookup else {}
        deltas: dict[str, int] = {}
        for column, items in per_column.items():
            if schema_of(column).nested:
                continue
            prefix = column_prefix(column)
            befores = [staged.get(prefix + key) for key, _ in items]
            unknown = [key for (key, _), before in zip(items, befores) if before is None]
            in_base = dict(zip(unknown, was_present(column, unknown))) if unknown else {}
            d = 0
            for (key, value), before in zip(items, befores):
                existed = before[:1] == SET if before is not None else in_base[key]
                exists = value[:1] == SET
                d += int(exists) - int(existed)
            deltas[column] = d
        return deltas

    # ------------------------------------------------------------------ packing buffered writes

    def buffered_bytes(self, column: str) -> int:
        v = self.env.get('counts', b'buffered:' + column.encode())
        return struct.unpack('<q', v)[0] if v else 0

    def buffered_columns(self) -> list[str]:
        with self.env.read() as txn:
            cur = txn.cursor(db=self._dbs['counts'])
            out = []
            if cur.set_range(b'buffered:'):
                for k, v in cur:
                    if not k.startswith(b'buffered:'):
                        break
                    if struct.unpack('<q', v)[0] > 0:
                        out.append(k[len(b'buffered:') :].decode())
            return out

    def pack(self, column: str, schema: ColumnSchema) -> int:
        """Move a column's buffered small writes into one sealed collection file; returns bytes moved."""
        prefix = column_prefix(column)
        digests: list[bytes] = []
        with self.env.read() as txn:
            cur = txn.cursor(db=self._dbs['bufidx'])
            if cur.set_range(prefix):
                for k in cur.iternext(keys=True, values=False):
                    if not k.startswith(prefix):
                        break
                    digests.append(k[len(prefix) :])
            located = dict(txn.cursor(db=self._dbs['locations']).getmulti(digests))
        items = [(d, located[d]) for d in digests if d in located]
        backend = self.store.backends.get(schema.backend)
        moved = 0
        if items and BACKEND_CLASSES[schema.backend].uses_files:
            datas = [self.store.backends.read(loc) for _, loc in items]
            typesize = np.dtype(schema.dtype).itemsize if schema.kind == 'ndarray' and schema.dtype else 1
            result = backend.write_batch(datas, options=schema.backend_options, typesize=typesize)
            fsync_paths(result.files)
            with self.store.history.write() as txn:
                txn.cursor(db=self.store.history.db('locations')).putmulti(
                    list(zip((d for d, _ in items), result.locations))
                )
            moved = sum(len(x) for x in datas)
        with self.env.write() as txn:
            for d in digests:
                txn.delete(prefix + d, db=self._dbs['bufidx'])
                if moved:
                    txn.delete(d, db=self._dbs['locations'])
            txn.delete(b'buffered:' + column.encode(), db=self._dbs['counts'])
        return moved

    # ------------------------------------------------------------------ clearing

    def inline_locations(self) -> list[tuple[bytes, bytes]]:
        with self.env.read() as txn:
            return list(txn.cursor(db=self._dbs['locations']))

    def compact_if_large(self) -> bool:
        """Replace an empty-but-grown staging environment by a compact copy (LMDB files never shrink).

        Called by the writer right after a commit cleared the staging area, so the copy is tiny. Other
        processes that have the old files open keep reading them; new opens see the new directory.
        """
        path = Path(self.env.spec.path)
        try:
            size = (path / 'data.mdb').stat().st_size
        except OSError:
            return False
        if size < COMPACT_ABOVE_BYTES or self.is_dirty():
            return False
        fresh = path.with_name('staging.compact')
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir()
        self.env.env.copy(str(fresh), compact=True)
        marked = (path / staging_guard.MARK).exists()
        old = path.with_name(f'staging.old-{os.getpid()}')
        ENVIRONMENTS.forget(str(path))
        os.rename(path, old)
        os.rename(fresh, path)
        fsync_dir(str(path.parent))
        shutil.rmtree(old, ignore_errors=True)
        if marked:
            staging_guard.mark_unsynced(path)
        self.env = self.store.staging
        self._dbs = self.env.dbs
        return True

    def clear(self, branch: str, base: str, generation: int) -> None:
        """Drop every staged change and start over from ``base``."""
        with self.env.write() as txn:
            for name in ('stage', 'schemas', 'meta', 'locations', 'bufidx', 'counts'):
                txn.drop(self._dbs[name], delete=False)
            db = self._dbs['info']
            txn.put(b'branch', branch.encode(), db=db)
            txn.put(b'base', base.encode(), db=db)
            txn.put(b'generation', str(generation).encode(), db=db)
