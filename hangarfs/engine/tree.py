"""A content-addressed, history-independent search tree: the key -> value map of a column.

The tree is a prolly tree (a B-tree whose node boundaries are chosen by content): every key gets a
*height* from a hash of the key alone; a level-0 node (leaf) ends after each key of height >= 1, a
level-j node ends after each child whose last key has height >= j+1. So the shape is a function of the
set of keys only: the same contents give the same root digest whatever the order of writes, and a
change rewrites only the nodes on the paths to the changed keys.

- Leaves hold sorted (encoded key, value) pairs; internal nodes hold, for each child, its last key
  and its digest. Small nodes keep a small commit small: a change rewrites about 1 KB per level.
  Entry counts are not in the nodes; ``tree_update`` returns the change in count instead.
- ``tree_update`` (in ``tree_build``) streams the old tree through per-level chunkers, reusing every
  old subtree that has no change and starts at a boundary; cost follows the number of changes, not
  the size of the tree.
- ``tree_diff`` (in ``tree_diff``) walks two trees together and skips every pair of subtrees with equal
  digests.

All functions take a ``NodeSource`` (``.node(digest)`` -> decoded node), so the algorithms know
nothing about where nodes are stored.
"""

from __future__ import annotations

import struct
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, Union

import xxhash

from hangarfs.engine.records import DIGEST_SIZE, EMPTY_ROOT
from hangarfs.errors import CorruptData

LEAF_BITS = 4  # a leaf holds 16 entries on average
FANOUT_BITS = 4  # an internal node holds 16 children on average
HEIGHT_SEED = 0x68616E6761726673
LEAF_BOUNDARY = 1 << (64 - LEAF_BITS)
MAX_LEVEL = 12

TYPE_LEAF = b'L'
TYPE_INTERNAL = b'I'


def key_height(key: bytes) -> int:
    h = xxhash.xxh3_64_intdigest(key, HEIGHT_SEED)
    if h >= LEAF_BOUNDARY:
        return 0
    zeros = 64 - h.bit_length()
    return min(MAX_LEVEL, 1 + (zeros - LEAF_BITS) // FANOUT_BITS)


# ---------------------------------------------------------------------------------------- node codec


class Leaf:
    __slots__ = ('keys', 'values')
    level = 0

    def __init__(self, keys: list[bytes], values: list[bytes]) -> None:
        self.keys = keys
        self.values = values


class Internal:
    __slots__ = ('children', 'keys', 'level')

    def __init__(self, level: int, keys: list[bytes], children: list[bytes]) -> None:
        self.level = level
        self.keys = keys
        self.children = children


Node = Union[Leaf, Internal]  # noqa: UP007 (a runtime alias)


def _pack_blobs(items: Sequence[bytes]) -> tuple[int, bytes]:
    """Offsets (u16 when they fit, else u32) followed by the concatenated items; returns (wide, bytes)."""
    blob = b''.join(items)
    offsets = [0]
    total = 0
    for it in items:
        total += len(it)
        offsets.append(total)
    wide = total > 0xFFFF
    fmt = f'<{len(offsets)}{"I" if wide else "H"}'
    return int(wide), struct.pack(fmt, *offsets) + blob


def _unpack_blobs(data: bytes, pos: int, n: int, wide: int) -> tuple[list[bytes], int]:
    size = 4 if wide else 2
    offs = struct.unpack_from(f'<{n + 1}{"I" if wide else "H"}', data, pos)
    start = pos + size * (n + 1)
    items = [data[start + offs[i] : start + offs[i + 1]] for i in range(n)]
    return items, start + offs[n]


def encode_leaf(keys: Sequence[bytes], values: Sequence[bytes]) -> bytes:
    n = len(keys)
    kwide, kpart = _pack_blobs(keys)
    width = len(values[0]) if n else 0
    if n and all(len(v) == width for v in values):
        flags = kwide | 2
        vpart = struct.pack('<I', width) + b''.join(values)
    else:
        vwide, vpart = _pack_blobs(values)
        flags = kwide | (4 if vwide else 0)
    return TYPE_LEAF + struct.pack('<BI', flags, n) + kpart + vpart


def encode_internal(level: int, keys: Sequence[bytes], children: Sequence[bytes]) -> bytes:
    kwide, kpart = _pack_blobs(keys)
    return TYPE_INTERNAL + struct.pack('<BBI', level, kwide, len(keys)) + kpart + b''.join(children)


def decode_node(data: bytes) -> Node:
    tag = data[:1]
    if tag == TYPE_LEAF:
        flags, n = struct.unpack_from('<BI', data, 1)
        keys, pos = _unpack_blobs(data, 6, n, flags & 1)
        if flags & 2:
            (width,) = struct.unpack_from('<I', data, pos)
            pos += 4
            values = [data[pos + i * width : pos + (i + 1) * width] for i in range(n)]
        else:
            values, _ = _unpack_blobs(data, pos, n, 1 if flags & 4 else 0)
        return Leaf(keys, values)
    if tag == TYPE_INTERNAL:
        level, kwide, n = struct.unpack_from('<BBI', data, 1)
        keys, pos = _unpack_blobs(data, 7, n, kwide)
        children = [data[pos + DIGEST_SIZE * i : pos + DIGEST_SIZE * (i + 1)] for i in range(n)]
        return Internal(level, keys, children)
    raise ValueError(f'not a tree node: type byte {tag!r}')


def is_leaf(data: bytes) -> bool:
    return data[:1] == TYPE_LEAF


def leaf_value_block(data: bytes) -> tuple[int, int, bytes]:
    """``(width, count, block)`` of a leaf's values without decoding its keys: when every value has
    the same ``width``, ``block`` holds them end to end (``count * width`` bytes); otherwise
    ``width`` is -1 (use ``decode_node``). For walks over millions of samples."""
    flags, n = struct.unpack_from('<BI', data, 1)
    if not flags & 2:
        return -1, n, b''
    size = 4 if flags & 1 else 2
    (keys_len,) = struct.unpack_from('<I' if flags & 1 else '<H', data, 6 + size * n)
    pos = 6 + size * (n + 1) + keys_len
    (width,) = struct.unpack_from('<I', data, pos)
    return width, n, data[pos + 4 : pos + 4 + width * n]


# ---------------------------------------------------------------------------------------- node source


def _decode_stored(digest: bytes, data: bytes | None) -> Node:
    if data is None:  # damage, not a missing sample: never a KeyError that reads as one
        raise CorruptData(
            f'tree node {digest.hex()} is missing from the store; run `hangarfs verify` for a full report',
            where=f'tree node {digest.hex()}',
        )
    try:
        return decode_node(data)
    except (ValueError, struct.error) as err:
        raise CorruptData(
            f'tree node {digest.hex()} is damaged: {err}; run `hangarfs verify` for a full report',
            where=f'tree node {digest.hex()}',
        ) from err


class NodeSource(Protocol):
    def node(self, digest: bytes) -> Node: ...


class NodeCache:
    """Decodes nodes fetched by ``load(digest) -> bytes`` and keeps recently used ones.

    Nodes are immutable, so one cache can serve every checkout of a repository in a process. Two
    generations of plain dicts keep it thread-safe under the GIL without a lock on the hot path.
    """

    def __init__(
        self,
        load: Callable[[bytes], bytes | None],
        max_nodes: int = 50_000,
        load_many: Callable[[Sequence[bytes]], dict[bytes, bytes]] | None = None,
    ) -> None:
        self._load = load
        self._load_many = load_many
        self._new: dict[bytes, Node] = {}
        self._old: dict[bytes, Node] = {}
        self._half = max(1, max_nodes // 2)
        self._lock = threading.Lock()

    def node(self, digest: bytes) -> Node:
        n = self._new.get(digest)
        if n is not None:
            return n
        n = self._old.get(digest)
        if n is None:
            n = _decode_stored(digest, self._load(digest))
        self._remember(digest, n)
        return n

    def nodes(self, digests: Sequence[bytes]) -> list[Node]:
        """:meth:`node` for many digests, the ones not cached loaded in one read transaction."""
        new, old = self._new, self._old
        out: list[Node | None] = [new.get(d) or old.get(d) for d in digests]
        missing = [d for d, n in zip(digests, out) if n is None]
        if not missing:
            return out  # type: ignore[return-value]
        missing_set = set(missing)
        if self._load_many is not None:
            loaded = self._load_many(sorted(set(missing)))
            for i, d in enumerate(digests):
                if out[i] is None:
                    out[i] = _decode_stored(d, loaded.get(d))
        for i, d in enumerate(digests):
            if d in missing_set:
                node = out[i]
                out[i] = node = self.node(d) if node is None else node
                self._remember(d, node)
        return out  # type: ignore[return-value]

    def _remember(self, digest: bytes, node: Node) -> None:
        with self._lock:
            if len(self._new) >= self._half:
                self._old = self._new
                self._new = {}
            self._new[digest] = node

    def raw(self, digest: bytes) -> bytes:
        """A node's stored bytes, without decoding or caching it."""
        data = self._load(digest)
        if data is None:
            raise CorruptData(
                f'tree node {digest.hex()} is missing from the store; '
                'run `hangarfs verify` for a full report',
                where=f'tree node {digest.hex()}',
            )
        return data

    def load_many_raw(self, digests: Sequence[bytes]) -> dict[bytes, bytes]:
        """The stored bytes of many nodes (verified where the loader verifies), none cached or decoded."""
        if self._load_many is not None:
            found = self._load_many(sorted(set(digests)))
        else:
            found = {d: data for d in digests if (data := self._load(d)) is not None}
        for d in digests:
            if d not in found:
                _decode_stored(d, None)  # raises: the tree names a node the store lacks
        return found

    def prime(self, nodes: dict[bytes, bytes]) -> None:
        """Add freshly written nodes so that reads after a commit need not reload them."""
        for d, data in nodes.items():
            self._remember(d, decode_node(data))


# ---------------------------------------------------------------------------------------- reading


def tree_get(src: NodeSource, root: bytes, key: bytes) -> bytes | None:
    if root == EMPTY_ROOT:
        return None
    d = root
    while True:
        node = src.node(d)
        i = bisect_left(node.keys, key)
        if isinstance(node, Leaf):
            return node.values[i] if i < len(node.keys) and node.keys[i] == key else None
        if i == len(node.keys):
            return None
        d = node.children[i]


def tree_get_many(src: NodeCache, root: bytes, keys: Sequence[bytes]) -> list[bytes | None]:
    """``tree_get`` of many sorted, unique keys: the tree is walked once, a level at a time, every node
    visited once however many keys lead through it, and the nodes a level needs loaded together."""
    out: list[bytes | None] = [None] * len(keys)
    if root == EMPTY_ROOT or not keys:
        return out
    frontier = [(root, 0, len(keys))]  # (node, the range of keys that lead to it)
    while frontier:
        nodes = src.nodes([d for d, _, _ in frontier])
        below = []
        for (_, lo, hi), node in zip(frontier, nodes):
            nkeys = node.keys
            if isinstance(node, Leaf):
                values, m = node.values, len(nkeys)
                j = 0
                for i in range(lo, hi):
                    k = keys[i]
                    j = bisect_left(nkeys, k, j)
                    if j < m and nkeys[j] == k:
                        out[i] = values[j]
                continue
            children, m = node.children, len(nkeys)
            i, c = lo, 0
            while i < hi:
                c = bisect_left(nkeys, keys[i], c)
                if c == m:
                    break  # past the last key of the tree
                j = bisect_right(keys, nkeys[c], i, hi)
                below.append((children[c], i, j))
                i = j
        frontier = below
    return out


def tree_items(src: NodeSource, root: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
    """All (key, value) pairs in key order, from ``start`` (inclusive) when given."""
    if root == EMPTY_ROOT:
        return
    stack: list[tuple[Node, int]] = []
    node = src.node(root)
    i = bisect_left(node.keys, start) if start is not None else 0
    stack.append((node, i))
    while stack:
        node, i = stack.pop()
        if isinstance(node, Leaf):
            keys, values = node.keys, node.values
            for j in range(i, len(keys)):
                yield keys[j], values[j]
            continue
        if i >= len(node.children):
            continue
        stack.append((node, i + 1))
        child = src.node(node.children[i])
        j = bisect_left(child.keys, start) if start is not None else 0
        stack.append((child, j))


def tree_scan_key_blocks(src: NodeCache, root: bytes) -> Iterator[list[bytes]]:
    """All keys in order, one leaf's keys at a time, reading keys only and keeping no leaf in the cache.

    For listing a column of millions of samples in bounded memory (internal nodes, a few per
    thousand keys, still go through the cache).
    """
    if root == EMPTY_ROOT:
        return
    stack = [root]
    while stack:
        d = stack.pop()
        data = src.raw(d)
        if data[:1] == TYPE_LEAF:
            try:
                flags, n = struct.unpack_from('<BI', data, 1)
                keys, _ = _unpack_blobs(data, 6, n, flags & 1)
            except (ValueError, struct.error) as err:
                raise CorruptData(
                    f'tree node {d.hex()} is damaged: {err}; run `hangarfs verify` for a full report',
                    where=f'tree node {d.hex()}',
                ) from err
            yield keys
        else:
            node = src.node(d)
            assert isinstance(node, Internal)
            stack.extend(reversed(node.children))


def tree_scan_keys(src: NodeCache, root: bytes) -> Iterator[bytes]:
    """All keys in order (see ``tree_scan_key_blocks``)."""
    for keys in tree_scan_key_blocks(src, root):
        yield from keys


def tree_node_digests(src: NodeSource, root: bytes) -> Iterator[tuple[bytes, Node]]:
    """Every node of the tree (digest, decoded node), parents before children."""
    if root == EMPTY_ROOT:
        return
    stack = [root]
    while stack:
        d = stack.pop()
        node = src.node(d)
        yield d, node
        if isinstance(node, Internal):
            stack.extend(reversed(node.children))
