"""The bulk read path of fixed-shape array columns: many samples into one preallocated array.

``get_batch`` of such a column goes through :func:`read_rows`: every key's ref found in one walk of
the tree (``tree_get_many``), every sample's location in one LMDB transaction, the locations grouped
by backend and parsed at once, and each backend filling its rows of the output (a collection-file
backend reads, verifies and decompresses every stored chunk the batch touches once).

A reader that reads much of a column (a training epoch) gets a :class:`ColumnIndex`: the column's
keys, sorted, and every sample's parsed location, in numpy arrays, built once from the commit (which
never changes) by scanning the tree's leaves in order and looking the locations up in sorted order.
A batch is then a ``searchsorted`` over the keys and a gather per stored chunk: no tree node, no
location lookup, no per-key parsing. Reads verify exactly what the per-sample path verifies (tree
nodes on load, each backend's checksums on every read).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hangarfs.backends import Backend, BackendSet
from hangarfs.backends.codes import CODE_SIZE, BackendCode
from hangarfs.backends.collection import CollectionFileBackend, SpanBatch
from hangarfs.engine.keys import Key, encode_key
from hangarfs.engine.records import DIGEST_SIZE, EMPTY_ROOT
from hangarfs.engine.tree import TYPE_LEAF, Internal, NodeCache, _unpack_blobs
from hangarfs.errors import CorruptData

#: A reader builds a column's index once its bulk reads have asked for this share of the column.
INDEX_SHARE = 16
#: ... and only for columns of at least this many samples (smaller ones are cheap to read per batch).
INDEX_MIN_SAMPLES = 50_000
_LOCATION_BATCH = 1 << 16
_NODE_BATCH = 4096


def int_key_array(keys: Sequence[Key] | np.ndarray) -> np.ndarray | None:
    """``keys`` as a uint64 array when every key is a non-negative int (the fast path), else None."""
    if isinstance(keys, np.ndarray):
        arr = keys
    else:
        if not keys or not all(type(k) is int for k in keys):
            return None
        try:
            arr = np.asarray(keys)
        except (ValueError, OverflowError):
            return None
    if arr.ndim != 1 or arr.dtype.kind not in 'iu':
        return None
    if arr.dtype.kind == 'i' and len(arr) and int(arr.min()) < 0:
        return None
    return arr.astype(np.uint64, copy=False)


@dataclass(frozen=True)
class _Group:
    """The rows of one backend: their parsed spans (collection files) or their raw locations."""

    backend: Backend
    spans: SpanBatch | None
    locations: list[bytes] | None

    def read(self, slots: np.ndarray, out: np.ndarray) -> None:
        if self.spans is not None:
            assert isinstance(self.backend, CollectionFileBackend)
            self.backend.read_span_rows(self.spans.take(slots), out)
        else:
            assert self.locations is not None
            locs = self.locations
            self.backend.read_rows([locs[i] for i in slots.tolist()], out)


def group_locations(backends: BackendSet, locations: Sequence[bytes]) -> tuple[np.ndarray, list[_Group]]:
    """(group of each location, the groups): locations split by backend, collection ones parsed."""
    n = len(locations)
    if n == 0:
        return np.zeros(0, dtype=np.int16), []
    prefixes = np.frombuffer(b''.join([loc[:CODE_SIZE] for loc in locations]), dtype='S2')
    if len(prefixes) != n:
        for loc in locations:
            backends.for_location(loc)  # raises for a location too short to name its backend
    codes, group = np.unique(prefixes, return_inverse=True)
    group = group.reshape(-1).astype(np.int16)
    groups = []
    for g in range(len(codes)):
        rows = np.flatnonzero(group == g) if len(codes) > 1 else np.arange(n)
        locs = [locations[i] for i in rows.tolist()] if len(codes) > 1 else list(locations)
        backend = backends.for_location(locs[0])
        if isinstance(backend, CollectionFileBackend):
            groups.append(_Group(backend, backend.parse_spans(locs), None))
        else:
            groups.append(_Group(backend, None, locs))
    return group, groups


def read_grouped(group: np.ndarray, groups: list[_Group], slot: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` row ``i`` from slot ``slot[i]`` of group ``group[i]``."""
    if len(groups) == 1:
        groups[0].read(slot, out)
        return
    for g, grp in enumerate(groups):
        rows = np.flatnonzero(group == g)
        if len(rows):
            part = np.empty((len(rows), out.shape[1]), dtype=np.uint8)
            grp.read(slot[rows], part)
            out[rows] = part


def read_locations(backends: BackendSet, locations: Sequence[bytes], out: np.ndarray) -> None:
    """Fill row ``i`` of ``out`` with the verified bytes at ``locations[i]``."""
    group, groups = group_locations(backends, locations)
    slot = np.empty(len(locations), dtype=np.intp)
    for g in range(len(groups)):
        rows = np.flatnonzero(group == g)
        slot[rows] = np.arange(len(rows))
    read_grouped(group, groups, slot, out)


class ColumnIndex:
    """One commit's fixed-shape column, indexed for bulk reads (see the module docstring)."""

    def __init__(
        self,
        int_keys: np.ndarray | None,
        str_rows: dict[bytes, int] | None,
        inline: np.ndarray | None,
        group: np.ndarray,
        slot: np.ndarray,
        groups: list[_Group],
    ) -> None:
        self.int_keys = int_keys  # sorted uint64 keys when every key is an int
        self.str_rows = str_rows  # else: encoded key -> row
        self.inline = inline  # (rows, width) values of a column with inline values
        self.group = group
        self.slot = slot
        self.groups = groups

    def rows_of(self, keys: Sequence[Key] | np.ndarray) -> np.ndarray:
        """The row of every key (-1 where absent)."""
        if self.int_keys is not None:
            arr = int_key_array(keys)
            if arr is not None:
                ik = self.int_keys
                pos = np.searchsorted(ik, arr)
                np.minimum(pos, len(ik) - 1, out=pos)
                if not len(ik):
                    return np.full(len(arr), -1, dtype=np.intp)
                return np.where(ik[pos] == arr, pos, -1)
            rows = []
            for k in keys:
                kenc = encode_key(k)
                if kenc[0] != 0:
                    rows.append(-1)
                    continue
                v = np.uint64(int.from_bytes(kenc[2:], 'big'))
                p = int(np.searchsorted(self.int_keys, v))
                rows.append(p if p < len(self.int_keys) and self.int_keys[p] == v else -1)
            return np.asarray(rows, dtype=np.intp)
        assert self.str_rows is not None
        get = self.str_rows.get
        return np.fromiter((get(encode_key(k), -1) for k in keys), dtype=np.intp, count=len(keys))

    def read(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Fill ``out`` row ``i`` with the sample at index row ``rows[i]`` (every row valid)."""
        if self.inline is not None:
            np.take(self.inline, rows, axis=0, out=out)
            return
        read_grouped(self.group[rows], self.groups, self.slot[rows], out)


def _leaf_entries(digest: bytes, data: bytes, width: int) -> tuple[list[bytes], bytes]:
    """(keys, values end to end) of a stored leaf whose values are all ``width`` bytes long."""
    try:
        flags, n = struct.unpack_from('<BI', data, 1)
        keys, pos = _unpack_blobs(data, 6, n, flags & 1)
        if flags & 2:
            (w,) = struct.unpack_from('<I', data, pos)
            values = data[pos + 4 : pos + 4 + n * w] if n else b''
            if n and w != width:
                raise ValueError(f'values of {w} bytes where {width} were expected')
        else:
            vals, _ = _unpack_blobs(data, pos, n, 1 if flags & 4 else 0)
            if any(len(v) != width for v in vals):
                raise ValueError(f'values not all {width} bytes long')
            values = b''.join(vals)
    except (ValueError, struct.error) as err:
        raise CorruptData(
            f'tree node {digest.hex()} is damaged: {err}; run `hangarfs verify` for a full report',
            where=f'tree node {digest.hex()}',
        ) from err
    if len(values) != n * width:
        raise CorruptData(f'tree node {digest.hex()} is cut short', where=f'tree node {digest.hex()}')
    return keys, values


def scan_leaves(nodes: NodeCache, root: bytes, width: int) -> tuple[list[bytes], bytes]:
    """Every (encoded key) and value (``width`` bytes each, end to end) of a tree, in key order.

    Leaves are loaded a level at a time in one transaction each, verified, and parsed without being
    decoded into the node cache (a 1M-sample column has ~60,000 of them).
    """
    if root == EMPTY_ROOT:
        return [], b''
    keys: list[bytes] = []
    values: list[bytes] = []
    level = [root]
    load_many = nodes.load_many_raw
    while level:
        below: list[bytes] = []
        for s in range(0, len(level), _NODE_BATCH):
            part = level[s : s + _NODE_BATCH]
            raw = load_many(part)
            for d in part:
                _scan_one(nodes, d, raw[d], width, keys, values, below)
        level = below
    return keys, b''.join(values)


def _scan_one(
    nodes: NodeCache,
    d: bytes,
    data: bytes,
    width: int,
    keys: list[bytes],
    values: list[bytes],
    below: list[bytes],
) -> None:
    if data[:1] == TYPE_LEAF:
        k, v = _leaf_entries(d, data, width)
        keys.extend(k)
        values.append(v)
    else:
        node = nodes.node(d)
        assert isinstance(node, Internal)
        below.extend(node.children)


def build_index(
    nodes: NodeCache,
    root: bytes,
    locations_of: Any,
    backends: BackendSet,
    inline_width: int | None,
) -> ColumnIndex | None:
    """The index of a fixed-shape column's tree; None when some sample is not local (on a remote)."""
    width = inline_width if inline_width is not None else DIGEST_SIZE
    kencs, values = scan_leaves(nodes, root, width)
    n = len(kencs)
    int_keys = _int_keys(kencs)
    str_rows = None if int_keys is not None else {k: i for i, k in enumerate(kencs)}
    del kencs
    vals = np.frombuffer(values, dtype=np.uint8).reshape(n, width)
    empty = np.zeros(0, dtype=np.intp)
    if inline_width is not None:
        return ColumnIndex(int_keys, str_rows, vals, empty, empty, [])
    # looked up in digest order: sequential pages of the location table
    order = np.argsort(vals[:, :8].copy().view('>u8').reshape(n), kind='stable')
    sorted_digests = vals[order].tobytes()
    digests = [sorted_digests[i : i + DIGEST_SIZE] for i in range(0, n * DIGEST_SIZE, DIGEST_SIZE)]
    locs: list[bytes | None] = []
    for s in range(0, n, _LOCATION_BATCH):
        part = digests[s : s + _LOCATION_BATCH]
        found = locations_of(part)
        locs.extend([found.get(d) for d in part])
    if None in locs:
        d = digests[locs.index(None)]
        raise CorruptData(f'no stored bytes for sample digest {d.hex()}')
    group, groups = group_locations(backends, locs)  # type: ignore[arg-type]
    if any(grp.backend.code == BackendCode.REMOTE for grp in groups):
        return None
    slot = np.empty(n, dtype=np.intp)
    for g in range(len(groups)):
        rows = np.flatnonzero(group == g)
        slot[rows] = np.arange(len(rows))
    row_group = np.empty(n, dtype=np.int16)
    row_slot = np.empty(n, dtype=np.intp)
    row_group[order] = group
    row_slot[order] = slot
    return ColumnIndex(int_keys, str_rows, None, row_group, row_slot, groups)


def _int_keys(kencs: list[bytes]) -> np.ndarray | None:
    """The int values of encoded keys (in order) when every key is an int, else None."""
    n = len(kencs)
    lens = np.fromiter(map(len, kencs), dtype=np.int64, count=n)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    flat = np.frombuffer(b''.join(kencs), dtype=np.uint8)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    if (flat[starts] != 0).any() or (flat[starts + 1].astype(np.int64) + 2 != lens).any():
        return None
    out = np.zeros(n, dtype=np.uint64)
    for length in np.unique(lens).tolist():
        rows = np.flatnonzero(lens == length)
        for b in range(2, length):
            out[rows] = (out[rows] << np.uint64(8)) | flat[starts[rows] + b].astype(np.uint64)
    return out
