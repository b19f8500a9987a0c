"""Properties of the content-addressed key tree (hangarfs/engine/tree.py).

The tree's promises: its shape depends only on its contents (an updated tree equals a freshly built one,
whatever the history), items come out sorted, lookups and diffs agree with a plain dict, and a small
change rewrites only a few nodes.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from hangarfs.engine.keys import encode_key
from hangarfs.engine.records import EMPTY_ROOT
from hangarfs.engine.tree import (
    Internal,
    Leaf,
    NodeCache,
    decode_node,
    encode_internal,
    encode_leaf,
    tree_get,
    tree_items,
)
from hangarfs.engine.tree_build import tree_build, tree_update
from hangarfs.engine.tree_diff import tree_diff

KEY_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-'


class NodeStore:
    """Tree nodes in a dict, read through the engine's own NodeCache."""

    def __init__(self) -> None:
        self.raw: dict[bytes, bytes] = {}
        self.cache = NodeCache(self.raw.get)
        self.reads = 0

    def node(self, digest: bytes) -> Leaf | Internal:
        self.reads += 1
        return self.cache.node(digest)

    def build(self, model: dict[bytes, bytes]) -> bytes:
        result = tree_build(sorted(model.items()))
        self.raw.update(result.nodes)
        assert result.delta == len(model)
        return result.root

    def update(self, root: bytes, changes: dict[bytes, bytes | None]) -> tuple[bytes, int]:
        result = tree_update(self, root, sorted(changes.items()))
        self.raw.update(result.nodes)
        return result.root, result.delta


def int_keys(max_value: int = 3000) -> st.SearchStrategy[bytes]:
    return st.integers(0, max_value).map(encode_key)


str_keys = st.text(KEY_CHARS, min_size=1, max_size=10).filter(lambda s: s[0] != '.').map(encode_key)
wide_int_keys = st.integers(0, 2**64 - 1).map(encode_key)
keys = st.one_of(int_keys(), int_keys(300), str_keys, wide_int_keys)
values = st.one_of(
    st.binary(max_size=24),
    st.sampled_from([bytes(32), b'\x01' * 32, b'\x02' * 32]),  # digest-like: fixed-width leaves
    st.integers(0, 9000).map(lambda n: bytes([n % 251]) * n),  # large: wide offsets in a leaf
)
models = st.dictionaries(keys, values, max_size=300)
changes = st.dictionaries(keys, st.one_of(st.none(), values), max_size=60)


def ranged_model(n: int) -> dict[bytes, bytes]:
    return {encode_key(i): i.to_bytes(4, 'big') for i in range(n)}


def assert_tree_is(store: NodeStore, root: bytes, model: dict[bytes, bytes]) -> None:
    items = list(tree_items(store, root))
    assert items == sorted(model.items())
    assert all(a[0] < b[0] for a, b in itertools.pairwise(items)), 'keys are not strictly ascending'
    if not model:
        assert root == EMPTY_ROOT


def apply(model: dict[bytes, bytes], change: dict[bytes, bytes | None]) -> dict[bytes, bytes]:
    out = dict(model)
    for k, v in change.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


@settings(max_examples=80, deadline=None)
@given(models, st.lists(changes, max_size=5))
def test_an_updated_tree_equals_a_fresh_build(model: dict[bytes, bytes], batches: list[dict]) -> None:
    store = NodeStore()
    root = store.build(model)
    assert_tree_is(store, root, model)
    for change in batches:
        new_model = apply(model, change)
        root, delta = store.update(root, change)
        assert delta == len(new_model) - len(model)
        model = new_model
        assert root == NodeStore().build(model), 'the same contents gave another root'
        assert_tree_is(store, root, model)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 5000),
    st.lists(st.dictionaries(int_keys(5100), st.one_of(st.none(), values), max_size=40), max_size=4),
)
def test_updates_of_deep_trees_equal_fresh_builds(n: int, batches: list[dict]) -> None:
    store = NodeStore()
    model = ranged_model(n)
    root = store.build(model)
    for change in batches:
        model = apply(model, change)
        root, _ = store.update(root, change)
        assert root == NodeStore().build(model)
    assert_tree_is(store, root, model)


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(range(200))), st.integers(1, 50))
def test_the_root_does_not_depend_on_the_order_of_writes(order: list[int], batch: int) -> None:
    store = NodeStore()
    root = EMPTY_ROOT
    for i in range(0, len(order), batch):
        root, _ = store.update(root, {encode_key(k): b'v%d' % k for k in order[i : i + batch]})
    assert root == NodeStore().build({encode_key(k): b'v%d' % k for k in range(200)})


@settings(max_examples=80, deadline=None)
@given(models, st.lists(keys, max_size=20))
def test_lookups_agree_with_a_dict(model: dict[bytes, bytes], probes: list[bytes]) -> None:
    store = NodeStore()
    root = store.build(model)
    for k, v in model.items():
        assert tree_get(store, root, k) == v
    for k in probes:
        assert tree_get(store, root, k) == model.get(k)
    for start in probes[:5]:
        assert list(tree_items(store, root, start)) == sorted((k, v) for k, v in model.items() if k >= start)


@settings(max_examples=80, deadline=None)
@given(models, changes, models)
def test_diff_equals_the_dict_difference(model: dict[bytes, bytes], change: dict, other: dict) -> None:
    store = NodeStore()
    a = store.build(model)
    b, _ = store.update(a, change)
    c = store.build(other)
    changed = apply(model, change)
    for (left, lroot), (right, rroot) in [
        ((model, a), (changed, b)),
        ((changed, b), (model, a)),
        ((model, a), (other, c)),
        ((model, a), (model, a)),
    ]:
        got = list(tree_diff(store, lroot, rroot))
        want = sorted(
            (k, left.get(k), right.get(k)) for k in left.keys() | right.keys() if left.get(k) != right.get(k)
        )
        assert got == want


@settings(max_examples=30, deadline=None)
@given(st.integers(300, 4000), st.lists(int_keys(4000), min_size=1, max_size=3))
def test_diff_reads_only_the_changed_paths(n: int, touched: list[bytes]) -> None:
    store = NodeStore()
    model = ranged_model(n)
    a = store.build(model)
    b, _ = store.update(a, {k: b'changed' for k in touched})
    depth = tree_depth(store, a)
    store.reads = 0
    diff = list(tree_diff(store, a, b))
    assert [k for k, _, _ in diff] == sorted(set(touched))
    # both roots, then at most one root-to-leaf path per changed key in each tree
    assert store.reads <= 2 + 2 * (depth + 1) * len(set(touched))


def tree_depth(store: NodeStore, root: bytes) -> int:
    """Number of levels above the leaves."""
    return store.node(root).level if root != EMPTY_ROOT else 0


def test_a_one_key_change_rewrites_one_path() -> None:
    store = NodeStore()
    model = ranged_model(50_000)
    root = store.build(model)
    depth = tree_depth(store, root)
    assert depth >= 2, 'the test wants a tree of at least three levels'
    for key in (0, 25_000, 49_999, 50_000):
        result = tree_update(store, root, [(encode_key(key), b'new')])
        new_nodes = [d for d in result.nodes if d not in store.raw]
        # the nodes on one root-to-leaf path, and a neighbour where a boundary moved
        assert len(new_nodes) <= 2 * (depth + 1), (key, len(new_nodes), depth)
        assert sum(len(store.raw.get(d, result.nodes[d])) for d in new_nodes) < 16_000


def test_empty_trees() -> None:
    store = NodeStore()
    assert store.build({}) == EMPTY_ROOT
    assert list(tree_items(store, EMPTY_ROOT)) == []
    assert tree_get(store, EMPTY_ROOT, encode_key(1)) is None
    root, delta = store.update(EMPTY_ROOT, {encode_key(1): b'x'})
    assert delta == 1 and list(tree_diff(store, EMPTY_ROOT, root)) == [(encode_key(1), None, b'x')]
    back, delta = store.update(root, {encode_key(1): None, encode_key(2): None})
    assert back == EMPTY_ROOT and delta == -1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(keys, values), max_size=40, unique_by=lambda kv: kv[0]), st.integers(1, 12))
def test_node_encoding_round_trips(pairs: list[tuple[bytes, bytes]], level: int) -> None:
    pairs.sort()
    ks = [k for k, _ in pairs]
    leaf = decode_node(encode_leaf(ks, [v for _, v in pairs]))
    assert isinstance(leaf, Leaf) and leaf.keys == ks and leaf.values == [v for _, v in pairs]
    children = [bytes([i % 256]) * 32 for i in range(len(ks))]
    internal = decode_node(encode_internal(level, ks, children))
    assert isinstance(internal, Internal)
    assert (internal.level, internal.keys, internal.children) == (level, ks, children)
