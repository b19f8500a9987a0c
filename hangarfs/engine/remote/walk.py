"""Walking what commits hold, for pushes and fetches: the tree nodes and the samples a commit adds.

Every function reads nodes through ``load(digest) -> bytes`` (verified by the caller's store) and
decodes them itself, so that a walk over millions of samples does not churn the shared node cache.

- :func:`new_nodes` lists the nodes of one tree that another tree lacks, level by level, without
  descending into subtrees the two share (cost follows the change, as ``tree_diff`` does); a push
  sends a commit's nodes against its first parent's.
- :func:`tree_walk` lists every node of a tree, skipping subtrees a predicate says are known (a
  fetch skips what the repository holds already).
- :func:`column_samples` turns leaves into the sample refs they hold (the inner trees of nested
  columns included), which say what a sample's digest and size are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from hangarfs.engine.records import DIGEST_SIZE, EMPTY_ROOT, ColumnSchema, Snapshot, digest_of
from hangarfs.engine.samples import SampleCodec
from hangarfs.engine.store import RepoStore
from hangarfs.engine.tree import Internal, Leaf, Node, decode_node, is_leaf
from hangarfs.errors import CorruptData

Load = Callable[[bytes], bytes]


def decode(digest: bytes, data: bytes) -> Node:
    try:
        return decode_node(data)
    except (ValueError, IndexError) as err:
        raise CorruptData(
            f'tree node {digest.hex()} does not decode: {err}', where=f'tree node {digest.hex()}'
        ) from err


def leaf_values(digest: bytes, data: bytes) -> list[bytes]:
    """The values of a leaf node's bytes (CorruptData if they are not a leaf)."""
    node = decode(digest, data)
    if not isinstance(node, Leaf):
        raise CorruptData(f'tree node {digest.hex()} is no leaf', where=f'tree node {digest.hex()}')
    return node.values


class RawNodes:
    """A ``NodeSource`` (for ``tree_get``) over ``load(digest) -> bytes``, decoding without a cache."""

    def __init__(self, load: Load) -> None:
        self.load = load

    def node(self, digest: bytes) -> Node:
        return decode(digest, self.load(digest))


class LocalNodes:
    """Tree nodes from this repository for a walk: a node's children are read in one transaction
    when the node is opened (``walk_raw``'s ``known_many`` hook), each checked against its digest."""

    def __init__(self, store: RepoStore) -> None:
        self._table = store.history_table('objects')
        self._store = store
        self._pending: dict[bytes, bytes] = {}

    def prefetch(self, children: list[bytes]) -> set[bytes]:
        self._pending.update(self._table.get_many(children))
        return set()  # nothing to skip: the walk wants every node

    def load(self, digest: bytes) -> bytes:
        data = self._pending.pop(digest, None)
        if data is None or digest_of(data) != digest:
            return self._store.nodes.raw(digest)  # verified (CorruptData names a damaged node)
        return data


def _level(node: Node) -> int:
    return 0 if isinstance(node, Leaf) else node.level


def new_nodes(load: Load, old_root: bytes, new_root: bytes) -> Iterator[tuple[bytes, bytes, Node]]:
    """``(digest, bytes, node)`` of every node of the tree at ``new_root`` that is not a node of the
    tree at ``old_root`` (a few shared ones may be listed too, never a missing one)."""
    if new_root in (EMPTY_ROOT, old_root):
        return
    new: dict[int, dict[bytes, tuple[bytes, Node] | None]] = {}  # level -> digest -> (bytes, node)
    old: dict[int, set[bytes]] = {}
    raw = load(new_root)
    node = decode(new_root, raw)
    new.setdefault(_level(node), {})[new_root] = (raw, node)
    if old_root != EMPTY_ROOT:
        old_node = decode(old_root, load(old_root))
        old.setdefault(_level(old_node), set()).add(old_root)
    while new:
        level = max(new)
        if old and max(old) > level:  # the old tree is taller: open its top until the levels meet
            top = max(old)
            for d in old.pop(top):
                n = decode(d, load(d))
                assert isinstance(n, Internal)
                old.setdefault(top - 1, set()).update(n.children)
            continue
        fresh = new.pop(level)
        stale = old.pop(level, set())
        shared = stale.intersection(fresh)
        if level > 0:  # open the old nodes not shared: their children may be shared
            for d in stale - shared:
                n = decode(d, load(d))
                assert isinstance(n, Internal)
                old.setdefault(level - 1, set()).update(n.children)
        for d, payload in fresh.items():
            if d in shared:
                continue
            if payload is None:
                data = load(d)
                payload = (data, decode(d, data))
            data, n = payload
            yield d, data, n
            if isinstance(n, Internal):
                below = new.setdefault(level - 1, {})
                for child in n.children:
                    below.setdefault(child, None)


def tree_walk(
    load: Load,
    root: bytes,
    known: Callable[[bytes], bool] = lambda d: False,
    *,
    known_many: Callable[[list[bytes]], set[bytes]] | None = None,
) -> Iterator[tuple[bytes, bytes, Node]]:
    """``(digest, bytes, node)`` of every node of the tree at ``root`` (parents first), except the
    subtrees whose root is held already: ``known(digest)``, or ``known_many(children)`` (the known
    ones among a node's children, asked once per node)."""
    if root == EMPTY_ROOT or known(root):
        return
    stack = [root]
    seen: set[bytes] = set()
    while stack:
        d = stack.pop()
        if d in seen:
            continue
        seen.add(d)
        data = load(d)
        node = decode(d, data)
        yield d, data, node
        if isinstance(node, Internal):
            children = node.children
            held = known_many(children) if known_many is not None else {c for c in children if known(c)}
            stack.extend(c for c in reversed(children) if c not in held)


def walk_raw(
    load: Load, root: bytes, known_many: Callable[[list[bytes]], set[bytes]]
) -> Iterator[tuple[bytes, bytes]]:
    """``(digest, bytes)`` of every node of the tree at ``root`` that is not known (as ``tree_walk``),
    decoding only internal nodes (a caller reads leaves as it needs: ``tree.leaf_value_block``)."""
    if root == EMPTY_ROOT:
        return
    stack = [root]
    seen: set[bytes] = set()
    while stack:
        d = stack.pop()
        if d in seen:
            continue
        seen.add(d)
        data = load(d)
        yield d, data
        if not is_leaf(data):
            node = decode(d, data)
            assert isinstance(node, Internal)
            held = known_many(node.children)
            stack.extend(c for c in reversed(node.children) if c not in held)


def leaf_first_key(node: Node) -> bytes:
    return node.keys[0] if node.keys else b''


@dataclass
class ColumnSamples:
    """The samples of one column that a walk found: their refs, in key order when the leaves came in
    key order (``ref[:32]`` is the digest); inline values hold no sample and are left out."""

    name: str
    schema: ColumnSchema
    refs: list[bytes] = field(default_factory=list)

    @property
    def codec(self) -> SampleCodec:
        return SampleCodec(self.name, self.schema)


def leaf_refs(leaves: Iterable[Leaf], codec: SampleCodec) -> Iterator[bytes]:
    """The sample refs a flat column's leaves hold (nothing for inline values)."""
    if codec.inline:
        return
    for leaf in leaves:
        yield from leaf.values


def nested_inner_roots(leaves: Iterable[Leaf]) -> Iterator[tuple[bytes, bytes]]:
    """``(encoded key, inner tree root)`` of every sample of a nested column's outer leaves."""
    for leaf in leaves:
        for k, v in zip(leaf.keys, leaf.values):
            yield k, v[:DIGEST_SIZE]


def snapshot_roots(snapshot: Snapshot) -> Iterator[tuple[str | None, bytes]]:
    """``(column name, tree root)`` of every column, and ``(None, metadata root)``."""
    for name, state in sorted(snapshot.columns.items()):
        yield name, state.root
    yield None, snapshot.metadata_root
