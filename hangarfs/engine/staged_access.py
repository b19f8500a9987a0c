"""The writer's access (see ``access.py``): the staging area over its base commit, and the write batch.

Reads merge the staged overlay over the base commit's trees (``merge_sorted``); writes gather in a
:class:`~hangarfs.engine.staging.WriteBatch` that becomes durable in one transaction, at once or when
the outermost ``with`` block exits (early once it holds ``BATCH_FLUSH_BYTES``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from hangarfs.engine.access import ReadAccess
from hangarfs.engine.bulk import ColumnIndex
from hangarfs.engine.keys import Key, decode_key
from hangarfs.engine.records import EMPTY_ROOT, ColumnSchema, Digest, Snapshot
from hangarfs.engine.samples import Prepared, SampleCodec
from hangarfs.engine.staging import REPLACED, SET, TOMBSTONE, StagingArea, WriteBatch, column_prefix
from hangarfs.engine.store import RepoStore

CLOSED = 'this checkout is closed; open a new one with repo.checkout(...)'


BATCH_FLUSH_BYTES = 256 << 20  # a `with` block's batch is flushed early once it holds this much data


def merge_sorted(
    base: Iterator[tuple[bytes, bytes]], overlay: Iterator[tuple[bytes, bytes]]
) -> Iterator[tuple[bytes, bytes]]:
    """Merge base (key, ref) pairs with overlay (key, SET+ref | TOMBSTONE) pairs, both sorted."""
    b = next(base, None)
    o = next(overlay, None)
    while b is not None or o is not None:
        if o is None or (b is not None and b[0] < o[0]):
            assert b is not None
            yield b
            b = next(base, None)
            continue
        if b is not None and b[0] == o[0]:
            b = next(base, None)
        if o[1][:1] == SET:
            yield o[0], o[1][1:]
        o = next(overlay, None)


class StagedAccess(ReadAccess):
    """The writer's access: the staging area over its base commit, and the write batch."""

    writable = True

    def __init__(self, store: RepoStore, commit: str, snapshot: Snapshot, staging: StagingArea) -> None:
        super().__init__(store, commit, snapshot)
        self.staging = staging
        self.batch = WriteBatch()
        self.batch_depth = 0  # `with` blocks open now, at any level: writes are made durable at 0
        self.staged_schemas: dict[str, ColumnSchema | None] = {}
        self.replaced: set[str] = set()  # committed columns removed and added again (start empty)
        self.meta_dirty = False
        self.reload()

    def reload(self) -> None:
        """Re-read what this access caches of the staging area."""
        self.staged_schemas = self.staging.schemas()
        self.replaced = self.staging.replaced()
        self.meta_dirty = bool(self.staging.meta())

    def rebase(self, commit: str, snapshot: Snapshot) -> None:
        """The staging area now starts (empty) at ``commit`` (after a commit or a merge)."""
        self.commit = commit
        self.snapshot = snapshot
        self.staged_schemas = {}
        self.replaced = set()
        self.meta_dirty = False

    # ------------------------------------------------------------------ schemas

    def schemas(self) -> dict[str, ColumnSchema]:
        out = super().schemas()
        for name, schema in self.staged_schemas.items():
            if schema is None:
                out.pop(name, None)
            else:
                out[name] = schema
        return out

    def root(self, name: str) -> Digest:
        if name in self.replaced or (name in self.staged_schemas and name not in self.snapshot.columns):
            return EMPTY_ROOT
        return super().root(name)

    def set_schema(self, name: str, schema: ColumnSchema) -> None:
        marker = REPLACED if name in self.replaced else SET
        self.flush(schemas={name: marker + schema.to_bytes()})
        self.staged_schemas[name] = schema

    def add_column(self, name: str, schema: ColumnSchema) -> None:
        if name in self.snapshot.columns:  # removed in this staging area: the new column starts empty
            self.replaced.add(name)
        self.set_schema(name, schema)

    def drop_column(self, name: str) -> None:
        self.flush()
        committed = name in self.snapshot.columns
        self.staging.drop_column(name, committed=committed)
        self.replaced.discard(name)
        if committed:
            self.staged_schemas[name] = None
        else:
            self.staged_schemas.pop(name, None)

    # ------------------------------------------------------------------ reads with the overlay

    def staged(self, skey: bytes) -> bytes | None:
        """The overlay entry of a stage key (SET + ref, or TOMBSTONE), or None."""
        v = self.batch.entries.get(skey)
        if v is not None:
            return v
        return self.staging.get(skey)

    def overlay(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Durable overlay entries under ``prefix`` (the batch flushed first), as (rest, value)."""
        self.flush()
        return self.staging.iter_prefix(prefix)

    def count(self, name: str) -> int:
        self.check_open()
        self.flush()
        base = 0 if name in self.replaced else super().count(name)
        return base + self.staging.count_delta(name)

    def ref(self, name: str, kenc: bytes) -> bytes | None:
        self.check_open()
        staged = self.staged(column_prefix(name) + kenc)
        if staged is not None:
            return staged[1:] if staged[:1] == SET else None
        return super().ref(name, kenc)

    def refs_many(self, name: str, kencs: Sequence[bytes]) -> list[bytes | None]:
        self.check_open()
        prefix = column_prefix(name)
        self.flush()
        staged = self.staging.get_many([prefix + k for k in kencs])
        rest = [k for k in kencs if prefix + k not in staged]
        base = dict(zip(rest, self._base_refs(name, rest)))
        out: list[bytes | None] = []
        for k in kencs:
            v = staged.get(prefix + k)
            if v is not None:
                out.append(v[1:] if v[:1] == SET else None)
            else:
                out.append(base[k])
        return out

    def _index(self, column: str, codec: SampleCodec, nkeys: int, now: bool = False) -> ColumnIndex | None:
        return None  # the staging area changes under a writer: its bulk reads resolve every batch

    def _before_bulk_read(self) -> None:
        self.flush()  # so that every staged sample has a location

    def iter_refs(self, name: str) -> Iterator[tuple[bytes, bytes]]:
        base = super().iter_refs(name)
        return merge_sorted(base, self.overlay(column_prefix(name)))

    def scan_keys(self, name: str) -> Iterator[bytes]:
        base = ((k, b'') for k in super().scan_keys(name))
        return (k for k, _ in merge_sorted(base, self.overlay(column_prefix(name))))

    def key_blocks(self, name: str) -> Iterator[list[bytes]]:
        keys = self.scan_keys(name)
        block: list[bytes] = []
        for k in keys:
            block.append(k)
            if len(block) == 1024:
                yield block
                block = []
        if block:
            yield block

    def outer(self, name: str, kenc: bytes) -> tuple[bool, bytes]:
        self.check_open()
        staged = self.staged(column_prefix(name) + kenc)
        if staged is not None and staged[:1] == TOMBSTONE:
            return True, EMPTY_ROOT
        return super().outer(name, kenc)

    def sub_items(self, name: str, kenc: bytes) -> Iterator[tuple[bytes, bytes]]:
        base = super().sub_items(name, kenc)
        # the overlay yields the rest after column prefix + key: the subkey, or b'' for the sample itself
        overlay = ((k, v) for k, v in self.overlay(column_prefix(name) + kenc) if k)
        return merge_sorted(base, overlay)

    def sub_ref(self, name: str, kenc: bytes, senc: bytes) -> bytes | None:
        self.check_open()
        staged = self.staged(column_prefix(name) + kenc + senc)
        if staged is not None:
            return staged[1:] if staged[:1] == SET else None
        return super().sub_ref(name, kenc, senc)

    def sample_keys(self, name: str) -> Iterator[bytes]:
        base = super().sample_keys(name)
        staged_keys = []
        last = None
        for rest, _ in self.overlay(column_prefix(name)):
            _, end = decode_key(rest)
            k = rest[:end]
            if k != last:
                staged_keys.append(k)
                last = k
        staged = iter(staged_keys)
        b, s = next(base, None), next(staged, None)
        while b is not None or s is not None:
            if s is None or (b is not None and b < s):
                assert b is not None
                yield b
                b = next(base, None)
            else:
                if b == s:
                    b = next(base, None)
                if next(iter(self.sub_items(name, s)), None) is not None:
                    yield s
                s = next(staged, None)

    def sample_count(self, name: str) -> int:
        if not self._has_staged_entries(name):
            return super().count(name)
        return sum(1 for _ in self.sample_keys(name))

    def _has_staged_entries(self, name: str) -> bool:
        prefix = column_prefix(name)
        return next(self.staging.iter_prefix(prefix), None) is not None or any(
            k.startswith(prefix) for k in self.batch.entries
        )

    def data(self, digest: bytes) -> bytes | bytearray:
        blob = self.batch.blobs.get(digest)
        if blob is not None:
            return bytes(blob[1])
        return super().data(digest)

    def load_many(
        self, column: str, keys: Sequence[Key], refs: Sequence[bytes], codec: SampleCodec | None = None
    ) -> list[bytes | bytearray]:
        self.flush()  # so that every staged sample has a location
        return super().load_many(column, keys, refs, codec)

    def read_range(
        self,
        column: str,
        key: Any,
        digest: bytes,
        start: int,
        stop: int,
        *,
        ref: bytes = b'',
        codec: SampleCodec | None = None,
    ) -> bytes:
        blob = self.batch.blobs.get(digest)
        if blob is not None:
            return bytes(memoryview(blob[1])[start:stop])
        return super().read_range(column, key, digest, start, stop, ref=ref, codec=codec)

    def metadata_get(self, kenc: bytes) -> bytes | None:
        self.check_open()
        if self.meta_dirty:
            staged = self.staging.meta()
            if kenc in staged:
                return staged[kenc]
        return super().metadata_get(kenc)

    def metadata_items(self) -> Iterator[tuple[bytes, bytes]]:
        base = super().metadata_items()
        if not self.meta_dirty:
            return base
        staged = sorted(
            (k, (SET + v) if v is not None else TOMBSTONE) for k, v in self.staging.meta().items()
        )
        return merge_sorted(base, iter(staged))

    # ------------------------------------------------------------------ writes

    def stage(self, column: str, skey: bytes, value: bytes, prepared: Prepared | None, typesize: int) -> None:
        """Stage one overlay entry (SET + ref, or TOMBSTONE), with the sample's bytes if new."""
        batch = self.batch
        batch.entries[skey] = value
        if prepared is not None and prepared.digest and prepared.digest not in batch.blobs:
            batch.blobs[prepared.digest] = (column, prepared.data, typesize)
            batch.pending_bytes += len(prepared.data)
        if self.batch_depth == 0 or batch.pending_bytes >= BATCH_FLUSH_BYTES:
            self.flush()

    def stage_many(
        self, column: str, entries: list[tuple[bytes, bytes]], prepared: Sequence[Prepared], typesize: int
    ) -> None:
        """Stage many entries at once (the bulk path of update_batch)."""
        batch = self.batch
        batch.entries.update(entries)
        blobs = batch.blobs
        for p in prepared:
            if p.digest and p.digest not in blobs:
                blobs[p.digest] = (column, p.data, typesize)
                batch.pending_bytes += len(p.data)
        if self.batch_depth == 0 or batch.pending_bytes >= BATCH_FLUSH_BYTES:
            self.flush()

    def set_metadata(self, kenc: bytes, value: bytes | None) -> None:
        """Stage a metadata value (None removes the key)."""
        self.flush(meta={kenc: (SET + value) if value is not None else TOMBSTONE})

    def enter_batch(self) -> None:
        self.check_open()
        self.batch_depth += 1

    def exit_batch(self) -> None:
        self.batch_depth = max(0, self.batch_depth - 1)
        if self.batch_depth == 0 and not self.closed:
            self.flush()

    def flush(self, meta: dict[bytes, bytes] | None = None, schemas: dict[str, bytes] | None = None) -> None:
        """Make the batch (and any metadata or schema changes) durable, in one staging transaction."""
        if not self.batch.entries and not self.batch.blobs and not meta and not schemas:
            return
        all_schemas = self.schemas()
        self.staging.flush(
            self.batch,
            schema_of=lambda name: all_schemas[name],
            was_present=self._in_base,
            schema_changes=schemas,
            meta_changes=meta,
        )
        if meta:
            self.meta_dirty = True

    def _in_base(self, column: str, kencs: list[bytes]) -> list[bool]:
        root = self.root(column)
        if root == EMPTY_ROOT:
            return [False] * len(kencs)
        return [ref is not None for ref in self._base_refs(column, kencs)]
