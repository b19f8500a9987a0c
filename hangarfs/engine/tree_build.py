"""Building and updating search trees (``tree``): per-level chunkers over the old tree's nodes.

``tree_update`` streams the old tree through per-level chunkers, reusing every old subtree that has no
change and starts at a boundary, so its cost follows the number of changes, not the size of the tree;
``tree_build`` makes a tree from sorted items. Both return the new nodes and the change in count.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

import xxhash

from hangarfs.engine.records import EMPTY_ROOT, Digest, digest_of
from hangarfs.engine.tree import (
    HEIGHT_SEED,
    LEAF_BOUNDARY,
    Leaf,
    NodeSource,
    encode_internal,
    encode_leaf,
    key_height,
)


class _Level:
    __slots__ = ('children', 'first', 'keys', 'total', 'values')

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.values: list[bytes] = []
        self.children: list[bytes] = []
        self.total = 0  # items ever added at this level
        self.first: bytes | None = None  # digest of the first child added (levels >= 1)


class _Builder:
    """Per-level chunkers: level j collects the items of level-j nodes and cuts them at boundaries."""

    def __init__(self) -> None:
        self.levels: list[_Level] = []
        self.nodes: dict[bytes, bytes] = {}
        self.delta = 0  # entries added minus entries removed

    def _lvl(self, j: int) -> _Level:
        while len(self.levels) <= j:
            self.levels.append(_Level())
        return self.levels[j]

    def empty_upto(self, j: int) -> bool:
        return not any(self.levels[i].keys for i in range(min(j + 1, len(self.levels))))

    def add_entries(self, keys: Sequence[bytes], values: Sequence[bytes]) -> None:
        if not keys:
            return
        lvl = self._lvl(0)
        lvl.total += len(keys)
        seed, bound = HEIGHT_SEED, LEAF_BOUNDARY
        h = xxhash.xxh3_64_intdigest
        start = 0
        for i, k in enumerate(keys):
            if h(k, seed) < bound:
                lvl.keys.extend(keys[start : i + 1])
                lvl.values.extend(values[start : i + 1])
                start = i + 1
                self._close(0)
        if start < len(keys):
            lvl.keys.extend(keys[start:])
            lvl.values.extend(values[start:])

    def add_ref(self, j: int, last_key: bytes, digest: bytes) -> None:
        lvl = self._lvl(j)
        if lvl.total == 0:
            lvl.first = digest
        lvl.total += 1
        lvl.keys.append(last_key)
        lvl.children.append(digest)
        if key_height(last_key) >= j + 1:
            self._close(j)

    def _encode(self, j: int) -> tuple[bytes, bytes]:
        lvl = self.levels[j]
        if j == 0:
            data = encode_leaf(lvl.keys, lvl.values)
        else:
            data = encode_internal(j, lvl.keys, lvl.children)
        d = digest_of(data)
        self.nodes[d] = data
        last = lvl.keys[-1]
        lvl.keys, lvl.values, lvl.children = [], [], []
        return d, last

    def _close(self, j: int) -> None:
        d, last = self._encode(j)
        self.add_ref(j + 1, last, d)

    def _completed_above(self, j: int) -> int:
        """Items at levels above j: nodes of level >= j already completed (built or reused)."""
        return sum(lvl.total for lvl in self.levels[j + 1 :])

    def finish(self) -> Digest:
        """Close the pending nodes bottom-up and return the root.

        The decisions use only facts that a fresh build and an update reusing old subtrees agree on
        (whether any node at or above a level was completed), so both give the same root.
        """
        j = 0
        while True:
            lvl = self._lvl(j)
            if lvl.keys:
                if self._completed_above(j) == 0:  # the pending items make the only node: the root
                    d, _ = self._encode(j)
                    return Digest(d)
                self._close(j)
            if self._completed_above(j) == 0:
                return EMPTY_ROOT
            above = self._lvl(j + 1)
            if above.total == 1 and self._completed_above(j + 1) == 0:
                assert above.first is not None
                return Digest(above.first)
            j += 1


Change = tuple[bytes, bytes | None]


@dataclass(frozen=True)
class TreeUpdate:
    root: Digest
    nodes: dict[bytes, bytes]  # new nodes to store (some may exist already)
    delta: int  # entries added minus entries removed


def tree_update(src: NodeSource, root: bytes, changes: Sequence[Change]) -> TreeUpdate:
    """Apply sorted, unique-key ``changes`` (value None deletes) to the tree at ``root``."""
    b = _Builder()
    n = len(changes)
    ci = 0
    if root != EMPTY_ROOT:
        node = src.node(root)
        ci = _walk(src, b, changes, ci, root, node.level, node.keys[-1], True)
    if ci < n:
        rest = [(k, v) for k, v in changes[ci:] if v is not None]
        b.add_entries([k for k, _ in rest], [v for _, v in rest])
        b.delta += len(rest)
    return TreeUpdate(b.finish(), b.nodes, b.delta)


def tree_build(items: Sequence[tuple[bytes, bytes]]) -> TreeUpdate:
    """Build a tree from sorted unique (key, value) pairs."""
    b = _Builder()
    b.add_entries([k for k, _ in items], [v for _, v in items])
    return TreeUpdate(b.finish(), b.nodes, len(items))


def _walk(
    src: NodeSource,
    b: _Builder,
    changes: Sequence[Change],
    ci: int,
    digest: bytes,
    level: int,
    last_key: bytes,
    is_last: bool,
) -> int:
    n = len(changes)
    touched = ci < n and changes[ci][0] <= last_key
    reusable = key_height(last_key) >= level + 1 or (is_last and ci == n)
    if not touched and reusable and b.empty_upto(level):
        b.add_ref(level + 1, last_key, digest)
        return ci
    node = src.node(digest)
    if isinstance(node, Leaf):
        keys, values = node.keys, node.values
        if not touched:
            b.add_entries(keys, values)
            return ci
        out_k: list[bytes] = []
        out_v: list[bytes] = []
        i, m = 0, len(keys)
        while ci < n and changes[ci][0] <= last_key:
            ck, cv = changes[ci]
            j = bisect_left(keys, ck, i)
            out_k.extend(keys[i:j])
            out_v.extend(values[i:j])
            i = j
            existed = i < m and keys[i] == ck
            if existed:
                i += 1
            if cv is not None:
                out_k.append(ck)
                out_v.append(cv)
                b.delta += 0 if existed else 1
            elif existed:
                b.delta -= 1
            ci += 1
        out_k.extend(keys[i:])
        out_v.extend(values[i:])
        b.add_entries(out_k, out_v)
        return ci
    last_idx = len(node.children) - 1
    for idx in range(len(node.children)):
        ci = _walk(
            src,
            b,
            changes,
            ci,
            node.children[idx],
            level - 1,
            node.keys[idx],
            is_last and idx == last_idx,
        )
    return ci
