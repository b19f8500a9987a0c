"""Checked reads of packs (the format is in ``packs``): what a fetch, a lazy read and fsck use.

- ``read_pack_blobs(store, key, table, size=...)``: the blobs an index names, as a ``BlobBatch`` (views
  of the fetched buffers). Entries less than ``max_gap`` apart share one range request. Every blob is
  checked before anything is returned: record header against its entry, stored bytes against their
  xxh3. When most of a pack is wanted it is read whole and checked against the footer's 64 KiB block
  checksums instead (512 hash calls per 32 MiB rather than one per blob), the wanted entries against
  the footer's table; a damaged wanted blob is still named.
- ``scan_pack``: the records of a pack read one by one without its footer (recovery).
- ``verify_pack``: a whole pack against its name (blake2b), its records, footer and blocks (fsck).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator, Sequence

import numpy as np
import xxhash

from hangarfs.backends.objstore.base import ObjectStore
from hangarfs.backends.packs import (
    DEFAULT_MAX_GAP,
    DEFAULT_MAX_REQUEST,
    DIGEST_SIZE,
    ENCODING_RAW,
    PACK_MAGIC,
    RECORD,
    RECORD_MAGIC,
    RECORD_VERSION,
    WHOLE_PACK_SHARE,
    PackEntry,
    PackFooter,
    block_checksums,
    digest_at,
    digests_of,
    pack_name,
    parse_footer,
    table_of,
)
from hangarfs.errors_remote import RemoteCorrupt


def check_headers(chunk: bytes | memoryview, start: int, table: np.ndarray, where: str) -> np.ndarray:
    """Check the record header of every entry of ``table`` in ``chunk`` (the pack's bytes from
    offset ``start``) against the entry (vectorised); return where each blob's bytes start in
    ``chunk``. RemoteCorrupt names the first bad blob."""
    view = memoryview(chunk)
    rel = table['offset'].astype(np.int64) - start
    ends = rel + RECORD.size + table['length'].astype(np.int64)
    short = np.flatnonzero((ends > len(view)) | (rel < 0))
    if len(short):
        i = int(short[0])
        raise RemoteCorrupt(
            where,
            f'the record at offset {int(table["offset"][i])} is cut short: the pack is truncated',
            digest=digest_at(table, i),
        )
    raw = np.frombuffer(view, np.uint8)
    heads = raw[rel[:, None] + np.arange(RECORD.size)]  # (n, 56): every record's header
    want = np.zeros((len(table), RECORD.size), np.uint8)
    want[:, :8] = np.frombuffer(RECORD_MAGIC + bytes([RECORD_VERSION, ENCODING_RAW, 0, 0]), np.uint8)
    want[:, 8:40] = np.ascontiguousarray(table['digest'], 'S32').view(np.uint8).reshape(-1, DIGEST_SIZE)
    want[:, 40:48] = table['length'].astype('<u8').view(np.uint8).reshape(-1, 8)
    want[:, 48:56] = table['checksum'].astype('<u8').view(np.uint8).reshape(-1, 8)
    bad = (heads != want).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        problem = (
            'unknown blob encoding: written by a newer hangarfs?'
            if heads[i, 5] != ENCODING_RAW and (heads[i, :5] == want[i, :5]).all()
            else f'the record at offset {int(table["offset"][i])} does not match its index entry'
        )
        raise RemoteCorrupt(where, problem, digest=digest_at(table, i))
    return rel + RECORD.size


def check_records(chunk: bytes | memoryview, start: int, table: np.ndarray, where: str) -> np.ndarray:
    """``check_headers``, then the xxh3 of every blob's stored bytes against its entry."""
    data_starts = check_headers(chunk, start, table, where)
    view = memoryview(chunk)
    xxh = xxhash.xxh3_64_intdigest
    # one short-lived view at a time: no memory is allocated per blob
    sums = [xxh(view[a : a + n]) for a, n in zip(data_starts.tolist(), table['length'].tolist())]
    expected = table['checksum'].tolist()
    if sums != expected:
        i = next(i for i, (got, exp) in enumerate(zip(sums, expected)) if got != exp)
        raise RemoteCorrupt(
            where,
            f'checksum mismatch in the record at offset {int(table["offset"][i])} '
            f'(expected {expected[i]:016x}, got {sums[i]:016x}): the stored bytes are damaged',
            digest=digest_at(table, i),
        )
    return data_starts


def check_blocks(data: bytes | memoryview, footer: PackFooter, where: str) -> None:
    """Check the bytes before the footer of a whole pack against the footer's block checksums."""
    got = block_checksums(memoryview(data)[: footer.footer_offset], footer.block_size)
    if tuple(got) != footer.block_sums:
        i = next(i for i, (a, b) in enumerate(zip(got, footer.block_sums)) if a != b)
        a = i * footer.block_size
        raise RemoteCorrupt(where, f'bytes {a}-{a + footer.block_size} fail their block checksum: damaged')


def plan_reads(
    table: np.ndarray, max_gap: int = DEFAULT_MAX_GAP, max_request: int = DEFAULT_MAX_REQUEST
) -> list[tuple[int, int, np.ndarray]]:
    """Coalesce a table of entries of one pack into ``(start, stop, rows)`` byte ranges, where
    ``rows`` index the table; entries less than ``max_gap`` apart share a range."""
    if not len(table):
        return []
    order = np.argsort(table['offset'], kind='stable')
    starts = table['offset'][order].astype(np.int64)
    ends = np.maximum.accumulate(starts + RECORD.size + table['length'][order].astype(np.int64))
    cuts = [0, *(np.flatnonzero(starts[1:] - ends[:-1] > max_gap) + 1).tolist(), len(order)]
    groups: list[tuple[int, int, np.ndarray]] = []
    for a, b in itertools.pairwise(cuts):
        while a < b:  # split a run longer than max_request (rare: packs are smaller)
            stop = a + 1 + int(np.searchsorted(ends[a + 1 : b], starts[a] + max_request, 'right'))
            groups.append((int(starts[a]), int(ends[stop - 1]), order[a:stop]))
            a = stop
    return groups


class BlobBatch(Sequence[tuple[bytes, memoryview]]):
    """The checked blobs of one pack read, held as the fetched buffers: ``batch[i]`` is
    ``(digest, read-only view of the stored bytes)``; nothing is copied and no object is made per
    blob until asked for. ``blobs()`` lists the views (for ``Backend.write_batch``)."""

    def __init__(
        self,
        pack: str,
        digests: list[bytes],
        chunks: list[memoryview],
        which: np.ndarray,
        starts: np.ndarray,
        lengths: np.ndarray,
    ) -> None:
        self.pack = pack
        self.digests = digests
        self._chunks = chunks
        self._which = which.tolist()
        self._starts = starts.tolist()
        self._lengths = lengths.tolist()

    def __len__(self) -> int:
        return len(self.digests)

    def blob(self, i: int) -> memoryview:
        a = self._starts[i]
        view: memoryview = self._chunks[self._which[i]][a : a + self._lengths[i]]
        return view

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.digests[i], self.blob(i)

    def __iter__(self) -> Iterator[tuple[bytes, memoryview]]:
        for i, digest in enumerate(self.digests):
            yield digest, self.blob(i)

    def blobs(self) -> list[memoryview]:
        return [self.blob(i) for i in range(len(self))]

    @property
    def nbytes(self) -> int:
        return sum(self._lengths)


def read_pack_blobs(
    store: ObjectStore,
    key: str,
    table: np.ndarray,
    *,
    size: int | None = None,
    max_gap: int = DEFAULT_MAX_GAP,
    max_request: int = DEFAULT_MAX_REQUEST,
) -> BlobBatch:
    """The stored bytes of each entry of ``table`` in the pack at ``key``, in offset order, every
    one checked before any is returned (RemoteCorrupt names the pack and the blob). Given the
    pack's ``size``, a read of most of it fetches it whole and checks its blocks (module docstring)."""
    where = store.object_url(key)
    wanted = int(table['length'].sum()) + RECORD.size * len(table)
    if size is not None and len(table) and wanted >= WHOLE_PACK_SHARE * size and size <= max_request:
        return _read_whole(store, key, table, size, where)
    plan = plan_reads(table, max_gap, max_request)
    chunks = store.get_ranges(key, [(start, stop) for start, stop, _ in plan])
    digests: list[bytes] = []
    which, starts, lengths = [], [], []
    for n, ((start, _, rows), chunk) in enumerate(zip(plan, chunks)):
        sub = table[rows]
        starts.append(check_records(chunk, start, sub, where))
        lengths.append(sub['length'].astype(np.int64))
        which.append(np.full(len(sub), n, np.int64))
        digests.extend(digests_of(sub))
    if not plan:
        return BlobBatch(key, [], [], *(np.zeros(0, np.int64),) * 3)
    return BlobBatch(
        key,
        digests,
        [memoryview(c) for c in chunks],
        np.concatenate(which),
        np.concatenate(starts),
        np.concatenate(lengths),
    )


def _read_whole(store: ObjectStore, key: str, table: np.ndarray, size: int, where: str) -> BlobBatch:
    (data,) = store.get_ranges(key, [(0, size)])
    if len(data) != size:
        raise RemoteCorrupt(where, f'expected {size} bytes, got {len(data)}: the pack is truncated')
    footer = parse_footer(data, size, where)
    assert not isinstance(footer, int)  # the whole pack holds its footer
    order = np.argsort(table['offset'], kind='stable')
    sub = table[order]
    try:
        check_blocks(data, footer, where)
    except RemoteCorrupt:
        check_records(data, 0, sub, where)  # names the damaged blob, if a wanted one is damaged
        raise
    # the blocks vouch for every record byte and the footer for its own; what is left to check is
    # that the entries asked for are records of this pack (vectorised, against the footer)
    ft = footer.table
    same = np.zeros(len(sub), bool)
    if len(ft):
        pos = np.minimum(np.searchsorted(ft['offset'], sub['offset']), len(ft) - 1)
        same[:] = True
        for name in ('offset', 'digest', 'length', 'checksum'):
            same &= ft[name][pos] == sub[name]
    if not same.all():
        i = int(np.flatnonzero(~same)[0])
        raise RemoteCorrupt(
            where,
            f'the index names a record at offset {int(sub["offset"][i])} that the pack does not hold',
            digest=digest_at(sub, i),
        )
    starts = sub['offset'].astype(np.int64) + RECORD.size
    n = len(sub)
    return BlobBatch(
        key,
        digests_of(sub),
        [memoryview(data)],
        np.zeros(n, np.int64),
        starts,
        sub['length'].astype(np.int64),
    )


def scan_pack(data: bytes | memoryview, where: str) -> tuple[str, np.ndarray]:
    """Group and table of a pack read record by record, without its footer (for recovery)."""
    view = memoryview(data)
    if bytes(view[: len(PACK_MAGIC)]) != PACK_MAGIC:
        raise RemoteCorrupt(where, 'does not start with the pack magic: not a hangarfs pack')
    (glen,) = struct.unpack_from('<H', view, len(PACK_MAGIC))
    pos = len(PACK_MAGIC) + 2 + glen
    group = bytes(view[pos - glen : pos]).decode('utf-8', errors='replace')
    entries = []
    while pos + RECORD.size <= len(view) and bytes(view[pos : pos + 4]) == RECORD_MAGIC:
        _, _, enc, _, digest, length, csum = RECORD.unpack_from(view, pos)
        entries.append(PackEntry(digest, pos, length, csum, enc))
        pos = entries[-1].end
    table = table_of(entries)
    check_records(view, 0, table, where)
    return group, table


def verify_pack(data: bytes | memoryview, name: str, where: str) -> tuple[str, np.ndarray]:
    """Check a whole pack: its hash is its name, every record passes its checksum, and the footer
    lists exactly the records. Returns the group and table; RemoteCorrupt otherwise."""
    got = pack_name(data)
    if got != name:
        raise RemoteCorrupt(where, f'the pack hashes to {got[:16]}…, not to its name: the bytes are damaged')
    group, scanned = scan_pack(data, where)
    footer = parse_footer(data, len(data), where)
    assert not isinstance(footer, int)
    if footer.group != group or footer.table.tobytes() != scanned.tobytes():
        raise RemoteCorrupt(where, 'the footer index does not list the records the pack holds')
    check_blocks(data, footer, where)
    return group, scanned
