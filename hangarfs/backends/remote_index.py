"""Partial index files of a remote, and the in-memory table that answers "which digests are there".

An upload writes, after its packs, one or more *partial index files* (borg 2, restic) listing every
blob of those packs: ``digest -> (pack, offset, length, xxh3 of the stored bytes)``. Learning what a
remote holds is then one LIST of ``index/`` plus one GET per index file, never a request per object
(DVC's HEAD-per-object is its main cost). Index files are immutable and named by the blake2b-256 of
their bytes, so a cached copy is checked by hashing it and a damaged one is never used. Layout::

    file    := INDEX_MAGIC(8) | header_len u32 | header JSON | entry * count | count u64 | 'HFIXEND' 0x01
    header  := {"packs": [{"key", "group", "size"}, ...], "supersedes": [index keys]}
    entry   := digest(32) | offset u64 | length u64 | xxh3_64 u64 | encoding u8 | pad(3) | pack u32
               (packs.ENTRY_DTYPE, the pack footer's entry, with ``pack`` the ordinal in ``packs``)

``RemoteIndex`` merges any number of index files into numpy arrays sorted by the first 8 bytes of the
digest: a lookup is a binary search, and ``missing(digests)`` answers for a million digests in one
vectorised pass. A digest listed in several packs (two uploads raced) resolves to any one of them.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hangarfs.backends.packs import DIGEST_SIZE, ENTRY_DTYPE, PackEntry, digest_at
from hangarfs.errors_remote import RemoteCorrupt

INDEX_MAGIC = b'HFINDEX\x01'
INDEX_END = b'HFIXEND\x01'


@dataclass(frozen=True)
class PackInfo:
    """A pack on the remote: its key (``data/<group>/<name>`` or ``meta/<name>``), group and size."""

    key: str
    group: str
    size: int


@dataclass(frozen=True)
class IndexEntry:
    """Where one blob lives on the remote."""

    digest: bytes
    pack: str
    offset: int
    length: int
    checksum: int
    encoding: int = 0

    def pack_entry(self) -> PackEntry:
        return PackEntry(self.digest, self.offset, self.length, self.checksum, self.encoding)


@dataclass(frozen=True)
class IndexFile:
    """One parsed index file: the packs it covers and their entries (a numpy table)."""

    packs: tuple[PackInfo, ...]
    table: np.ndarray
    supersedes: tuple[str, ...] = ()


def index_name(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def serialize_index(packs: Sequence[tuple[PackInfo, np.ndarray]], supersedes: Sequence[str] = ()) -> bytes:
    """The bytes of an index file covering ``packs`` (each with its table of entries)."""
    header = json.dumps(
        {
            'packs': [{'key': p.key, 'group': p.group, 'size': p.size} for p, _ in packs],
            'supersedes': list(supersedes),
        },
        separators=(',', ':'),
        sort_keys=True,
    ).encode()
    tables = []
    for ordinal, (_, table) in enumerate(packs):
        t = np.array(table, ENTRY_DTYPE, copy=True)
        t['pack'] = ordinal
        tables.append(t)
    table = np.concatenate(tables) if tables else np.zeros(0, ENTRY_DTYPE)
    return b''.join(
        (
            INDEX_MAGIC,
            struct.pack('<I', len(header)),
            header,
            table.tobytes(),
            struct.pack('<Q', len(table)),
            INDEX_END,
        )
    )


def parse_index(data: bytes, where: str, name: str | None = None) -> IndexFile:
    """Parse (and, given its ``name``, authenticate) the bytes of an index file."""
    if name is not None and index_name(data) != name:
        raise RemoteCorrupt(where, 'the index file does not hash to its name: damaged or truncated')
    if len(data) < len(INDEX_MAGIC) + 4 + 16 or data[:8] != INDEX_MAGIC or data[-8:] != INDEX_END:
        raise RemoteCorrupt(where, 'not a hangarfs index file (bad magic): damaged or truncated')
    (hlen,) = struct.unpack_from('<I', data, 8)
    (count,) = struct.unpack_from('<Q', data, len(data) - 16)
    body = 12 + hlen
    if body + count * ENTRY_DTYPE.itemsize != len(data) - 16:
        raise RemoteCorrupt(where, 'the index file has the wrong length for its entry count')
    try:
        header = json.loads(data[12:body])
        packs = tuple(PackInfo(str(p['key']), str(p['group']), int(p['size'])) for p in header['packs'])
        supersedes = tuple(str(s) for s in header.get('supersedes', ()))
    except (ValueError, KeyError, TypeError) as err:
        raise RemoteCorrupt(where, f'the index header is not valid: {err}') from err
    table = np.frombuffer(data, ENTRY_DTYPE, count, body)
    if count and int(table['pack'].max()) >= len(packs):
        raise RemoteCorrupt(where, 'an index entry names a pack the index does not list')
    return IndexFile(packs, table, supersedes)


class RemoteIndex:
    """Every blob the merged index files name: membership, lookups and per-group listings."""

    def __init__(self, files: Mapping[str, IndexFile] | None = None) -> None:
        files = dict(files or {})
        superseded = {s for f in files.values() for s in f.supersedes}
        used = {k: f for k, f in files.items() if k not in superseded}
        self.index_keys = frozenset(files)
        packs: list[PackInfo] = []
        ordinal: dict[str, int] = {}
        tables = []
        for f in used.values():
            remap = np.zeros(max(len(f.packs), 1), np.uint32)
            for i, p in enumerate(f.packs):
                if p.key not in ordinal:
                    ordinal[p.key] = len(packs)
                    packs.append(p)
                remap[i] = ordinal[p.key]
            t = f.table.copy()
            t['pack'] = remap[t['pack']] if len(t) else t['pack']
            tables.append(t)
        table = np.concatenate(tables) if tables else np.zeros(0, ENTRY_DTYPE)
        prefixes = _prefixes(table['digest'])
        order = np.argsort(prefixes, kind='stable')
        self._table = table[order]
        self._prefix = prefixes[order]
        self.packs: dict[str, PackInfo] = {p.key: p for p in packs}
        self._pack_keys = [p.key for p in packs]

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, bytes) and self._find(digest) is not None

    def _find(self, digest: bytes) -> int | None:
        if len(digest) != DIGEST_SIZE:
            return None
        key = _prefixes(np.array([digest], 'S32'))[0]
        i = int(np.searchsorted(self._prefix, key, 'left'))
        stripped = digest.rstrip(b'\0')  # numpy 'S' values drop trailing NULs
        while i < len(self._prefix) and self._prefix[i] == key:
            if self._table['digest'][i] == stripped:
                return i
            i += 1
        return None

    def _entry(self, i: int) -> IndexEntry:
        row = self._table[i]
        return IndexEntry(
            digest_at(self._table, i),
            self._pack_keys[int(row['pack'])],
            int(row['offset']),
            int(row['length']),
            int(row['checksum']),
            int(row['encoding']),
        )

    def lookup(self, digest: bytes) -> IndexEntry | None:
        i = self._find(digest)
        return None if i is None else self._entry(i)

    def missing(self, digests: Sequence[bytes]) -> list[bytes]:
        """Those of ``digests`` the remote does not hold, in the order given (vectorised)."""
        if not digests:
            return []
        query = np.array(digests, 'S32')
        qp = _prefixes(query)
        pos = np.searchsorted(self._prefix, qp, 'left')
        clipped = np.minimum(pos, max(len(self._prefix) - 1, 0))
        if not len(self._prefix):
            return list(digests)
        prefix_hit = (pos < len(self._prefix)) & (self._prefix[clipped] == qp)
        hit = prefix_hit & (self._table['digest'][clipped] == query)
        out = []
        for i in np.flatnonzero(~hit).tolist():
            d = digests[i]
            # the first row with this prefix holds another digest: look at its neighbours (rare)
            if not prefix_hit[i] or self._find(d) is None:
                out.append(d)
        return out

    def entries(self, digests: Iterable[bytes]) -> list[IndexEntry]:
        """The entries of ``digests``; KeyError names the first one the remote lacks."""
        out = []
        for d in digests:
            i = self._find(d)
            if i is None:
                raise KeyError(f'the remote index has no blob {d.hex()}')
            out.append(self._entry(i))
        return out

    def group_entries(self, group: str) -> Iterator[IndexEntry]:
        """Every entry of the packs of ``group``, pack by pack in offset order."""
        for key, table in self.group_tables(group):
            for i in range(len(table)):
                yield IndexEntry(
                    digest_at(table, i),
                    key,
                    int(table['offset'][i]),
                    int(table['length'][i]),
                    int(table['checksum'][i]),
                    int(table['encoding'][i]),
                )

    def group_tables(self, group: str | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """``(pack key, table of its entries in offset order)`` for every pack (of ``group``)."""
        if not len(self._table):
            return
        order = np.lexsort((self._table['offset'], self._table['pack']))
        packs = self._table['pack'][order]
        bounds = np.flatnonzero(np.diff(packs)) + 1
        for rows in np.split(order, bounds):
            key = self._pack_keys[int(self._table['pack'][rows[0]])]
            if group is None or self.packs[key].group == group:
                yield key, self._table[rows]

    def rows_of(self, digests: Sequence[bytes]) -> np.ndarray:
        """The row of each digest in the merged table (-1 for one the remote lacks), vectorised."""
        if not digests:
            return np.zeros(0, np.int64)
        if not len(self._prefix):
            return np.full(len(digests), -1, np.int64)
        query = np.array(digests, 'S32')
        qp = _prefixes(query)
        pos = np.minimum(np.searchsorted(self._prefix, qp, 'left'), len(self._prefix) - 1)
        rows = np.where(self._table['digest'][pos] == query, pos, -1).astype(np.int64)
        for i in np.flatnonzero(rows < 0).tolist():  # a shared 8-byte prefix (rare): look closer
            found = self._find(digests[i])
            rows[i] = -1 if found is None else found
        return rows

    def tables_for(self, digests: Iterable[bytes]) -> dict[str, np.ndarray]:
        """The entries of ``digests`` grouped by pack; KeyError names the first one the remote lacks."""
        wanted = list(digests)
        rows = self.rows_of(wanted)
        if len(rows) and rows.min() < 0:
            raise KeyError(f'the remote index has no blob {wanted[int(np.argmin(rows))].hex()}')
        if not len(rows):
            return {}
        sub = self._table[rows]
        order = np.argsort(sub['pack'], kind='stable')
        sub = sub[order]
        bounds = np.flatnonzero(np.diff(sub['pack'])) + 1
        return {self._pack_keys[int(part['pack'][0])]: part for part in np.split(sub, bounds)}

    def digests(self) -> Iterator[bytes]:
        for i in range(len(self._table)):
            yield digest_at(self._table, i)


def _prefixes(digests: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each S32 digest as big-endian uint64 (sort order = byte order)."""
    if not len(digests):
        return np.zeros(0, np.uint64)
    raw = np.ascontiguousarray(digests, 'S32').view(np.uint8).reshape(-1, DIGEST_SIZE)
    return np.ascontiguousarray(raw[:, :8]).view('>u8').ravel().astype(np.uint64)
