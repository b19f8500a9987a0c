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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hangarfs.backends import BACKEND_CLASSES, inline_location
from hangarfs.backends.codec import fsync_dir, fsync_paths
from hangarfs.engine import staging_guard
from hangarfs.engine.lmdbenv import ENVIRONMENTS, Txn
from hangarfs.engine.records import ColumnSchema
from hangarfs.engine.store import RepoStore, is_placeholder

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
    blobs: dict[bytes, tuple[str, bytes | memoryview, int]] = field(
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
        self._open()

    def _open(self) -> None:
        self.env = self.store.staging
        table = self.store.staging_table
        self._stage, self._schemas, self._meta = table('stage'), table('schemas'), table('meta')
        self._locations, self._bufidx = table('locations'), table('bufidx')
        self._counts, self._info = table('counts'), table('info')

    # ------------------------------------------------------------------ info

    def info(self) -> StageInfo:
        with self.env.read() as txn:
            branch = self._info.get(b'branch', txn=txn)
            base = self._info.get(b'base', txn=txn)
            gen = self._info.get(b'generation', txn=txn)
        return StageInfo(
            branch.decode() if branch else '',
            base.decode() if base else '',
            int(gen) if gen else 0,
        )

    def set_info(self, branch: str, base: str, generation: int | None = None) -> None:
        with self.env.write() as txn:
            self._put_info(txn, branch, base, generation)

    def _put_info(self, txn: Txn, branch: str, base: str, generation: int | None) -> None:
        self._info.put(b'branch', branch.encode(), txn=txn)
        self._info.put(b'base', base.encode(), txn=txn)
        if generation is not None:
            self._info.put(b'generation', str(generation).encode(), txn=txn)

    def is_dirty(self) -> bool:
        with self.env.read() as txn:
            return any(t.count(txn=txn) for t in (self._stage, self._schemas, self._meta))

    def entry_count(self) -> int:
        """How many sample entries the overlay holds (O(1))."""
        return self._stage.count()

    # ------------------------------------------------------------------ reading the overlay

    def get(self, skey: bytes) -> bytes | None:
        return self._stage.get(skey)

    def get_many(self, skeys: list[bytes]) -> dict[bytes, bytes]:
        return self._stage.get_many(skeys)

    def iter_prefix(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Overlay entries whose stage key starts with ``prefix``, as (rest of key, value), in order."""
        n = len(prefix)
        for k, v in self._stage.iter(prefix, start=start):
            yield k[n:], v

    def changes(self, prefix: bytes) -> list[tuple[bytes, bytes | None]]:
        """The overlay under ``prefix`` as sorted (rest of key, ref or None for a deletion) pairs."""
        n = len(prefix)
        return [(k[n:], v[1:] if v[0] == 1 else None) for k, v in self._stage.items(prefix)]

    def schemas(self) -> dict[str, ColumnSchema | None]:
        return {
            k.decode(): ColumnSchema.from_bytes(v[1:]) if v[:1] in (SET, REPLACED) else None
            for k, v in self._schemas.items()
        }

    def replaced(self) -> set[str]:
        """Committed columns removed and added again under the same name (their data starts empty)."""
        return {k.decode() for k, v in self._schemas.items() if v[:1] == REPLACED}

    def meta(self) -> dict[bytes, bytes | None]:
        return {k: (v[1:] if v[:1] == SET else None) for k, v in self._meta.items()}

    def count_delta(self, column: str) -> int:
        return self._counts.get_int(column.encode())

    def staged_columns(self) -> set[str]:
        """Columns with staged sample entries."""
        return {name.decode() for name in self._stage.first_keys_by_separator(b'\x00')}

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
            self.store.history_table('locations').put_many(file_locations)
        deltas = self._count_deltas(batch, schema_of, was_present)
        with self.env.write() as txn:
            self._stage.put_many(sorted(batch.entries.items()), txn=txn)
            self._locations.put_many(inline, txn=txn)
            self._bufidx.put_many(bufidx, txn=txn)
            for column, d in deltas.items():
                if d:
                    self._counts.add_int(column.encode(), d, txn=txn)
            for column, n in buffered.items():
                self._counts.add_int(b'buffered:' + column.encode(), n, txn=txn)
            for name, value in (schema_changes or {}).items():
                self._schemas.put(name.encode(), value, txn=txn)
            for mkey, value in (meta_changes or {}).items():
                self._meta.put(mkey, value, txn=txn)
        batch.clear()
        for column in buffered:
            if self.buffered_bytes(column) >= BUFFER_PACK_BYTES:
                self.pack(column, schema_of(column))

    def drop_column(self, name: str, *, committed: bool) -> None:
        """Forget everything staged for a column; a committed one is marked removed (one transaction)."""
        with self.env.write() as txn:
            self._stage.delete_prefix(column_prefix(name), txn=txn)
            self._counts.delete(name.encode(), txn=txn)
            if committed:
                self._schemas.put(name.encode(), TOMBSTONE, txn=txn)
            else:
                self._schemas.delete(name.encode(), txn=txn)

    def _new_blobs(
        self, blobs: dict[bytes, tuple[str, bytes | memoryview, int]]
    ) -> dict[str, list[tuple[bytes, bytes | memoryview, int]]]:
        """Blobs whose digest is stored nowhere yet, grouped by column."""
        if not blobs:
            return {}
        digests = list(blobs)
        # a remote placeholder is no copy: bytes written here are kept (and replace it at commit)
        known = {
            d
            for d, loc in self.store.history_table('locations').get_many(digests).items()
            if not is_placeholder(loc)
        }
        rest = [d for d in digests if d not in known]
        if rest and self._locations.count():  # (often empty: right after a commit)
            known.update(self._locations.get_many(rest))
        out: dict[str, list[tuple[bytes, bytes | memoryview, int]]] = {}
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
        return self._counts.get_int(b'buffered:' + column.encode())

    def buffered_columns(self) -> list[str]:
        return [
            k[len(b'buffered:') :].decode()
            for k, v in self._counts.items(b'buffered:')
            if int.from_bytes(v, 'little', signed=True) > 0
        ]

    def pack(self, column: str, schema: ColumnSchema) -> int:
        """Move a column's buffered small writes into one sealed collection file; returns bytes moved."""
        prefix = column_prefix(column)
        with self.env.read() as txn:
            digests = [k[len(prefix) :] for k, _ in self._bufidx.items(prefix, txn=txn)]
            located = self._locations.get_many(digests, txn=txn)
        items = [(d, located[d]) for d in digests if d in located]
        backend = self.store.backends.get(schema.backend)
        moved = 0
        if items and BACKEND_CLASSES[schema.backend].uses_files:
            datas = [self.store.backends.read(loc) for _, loc in items]
            typesize = np.dtype(schema.dtype).itemsize if schema.kind == 'ndarray' and schema.dtype else 1
            result = backend.write_batch(datas, options=schema.backend_options, typesize=typesize)
            fsync_paths(result.files)
            self.store.history_table('locations').put_many(list(zip((d for d, _ in items), result.locations)))
            moved = sum(len(x) for x in datas)
        with self.env.write() as txn:
            self._bufidx.delete_many((prefix + d for d in digests), txn=txn)
            if moved:
                self._locations.delete_many(digests, txn=txn)
            self._counts.delete(b'buffered:' + column.encode(), txn=txn)
        return moved

    # ------------------------------------------------------------------ clearing

    def inline_locations(self) -> list[tuple[bytes, bytes]]:
        return self._locations.items()

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
        self.env.copy_compacted(str(fresh))
        marked = (path / staging_guard.MARK).exists()
        old = path.with_name(f'staging.old-{os.getpid()}')
        ENVIRONMENTS.forget(str(path))
        os.rename(path, old)
        os.rename(fresh, path)
        fsync_dir(str(path.parent))
        shutil.rmtree(old, ignore_errors=True)
        if marked:
            staging_guard.mark_unsynced(path)
        self._open()
        return True

    def clear(self, branch: str, base: str, generation: int) -> None:
        """Drop every staged change and start over from ``base``."""
        with self.env.write() as txn:
            for table in (
                self._stage,
                self._schemas,
                self._meta,
                self._locations,
                self._bufidx,
                self._counts,
            ):
                table.clear(txn=txn)
            self._put_info(txn, branch, base, generation)
