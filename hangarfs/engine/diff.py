"""Differences between two snapshots, at the cost of the change.

Each column's key -> reference map is a content-addressed tree, so two snapshots are compared by
walking their trees together with ``tree_diff``, which skips every pair of subtrees whose digests are
equal: a 10-sample difference in a million-sample column reads a few dozen nodes. Nested columns are a
tree of ``key -> inner root + subsample count``; only the samples whose inner roots differ are entered.

Everything here takes a :class:`~hangarfs.engine.tree.NodeSource`, so it works the same on stored
commits and on snapshots built in memory (the staging area, a virtual merge base): wrap the store's
source in an :class:`OverlaySource` holding the nodes not stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hangarfs.backends.codec import decode_varint
from hangarfs.engine.keys import decode_one_key, key_sort_order
from hangarfs.engine.records import DIGEST_SIZE, EMPTY_ROOT, ColumnState, Digest, Snapshot
from hangarfs.engine.tree import Node, NodeSource, decode_node
from hangarfs.engine.tree_diff import tree_diff


class OverlaySource:
    """A node source that serves nodes not (yet) stored before asking the store's source."""

    def __init__(self, base: NodeSource, nodes: dict[bytes, bytes] | None = None) -> None:
        self._base = base
        self._encoded: dict[bytes, bytes] = dict(nodes or {})
        self._decoded: dict[bytes, Node] = {}

    def add(self, nodes: dict[bytes, bytes]) -> None:
        self._encoded.update(nodes)

    def node(self, digest: bytes) -> Node:
        found = self._decoded.get(digest)
        if found is not None:
            return found
        data = self._encoded.get(digest)
        if data is None:
            return self._base.node(digest)
        node = decode_node(data)
        self._decoded[digest] = node
        return node


# ---------------------------------------------------------------------------------------- results


def _sorted_keys(keys: frozenset[Any]) -> list[Any]:
    def order(k: Any) -> Any:
        if isinstance(k, tuple):
            return tuple(key_sort_order(p) for p in k)
        return key_sort_order(k)

    return sorted(keys, key=order)


def _jsonable(key: Any) -> Any:
    return list(key) if isinstance(key, tuple) else key


@dataclass(frozen=True)
class Changes:
    """What was added, deleted and mutated between two states: keys, (key, subkey) pairs or names."""

    added: frozenset[Any] = field(default_factory=frozenset)
    deleted: frozenset[Any] = field(default_factory=frozenset)
    mutated: frozenset[Any] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.added or self.deleted or self.mutated)

    def __len__(self) -> int:
        return len(self.added) + len(self.deleted) + len(self.mutated)

    def to_dict(self) -> dict[str, list[Any]]:
        """Keys in key order; (key, subkey) pairs become 2-item lists (JSON has no tuples)."""
        return {
            'added': [_jsonable(k) for k in _sorted_keys(self.added)],
            'deleted': [_jsonable(k) for k in _sorted_keys(self.deleted)],
            'mutated': [_jsonable(k) for k in _sorted_keys(self.mutated)],
        }

    def __repr__(self) -> str:
        def show(keys: frozenset[Any]) -> str:
            return '{' + ', '.join(repr(k) for k in _sorted_keys(keys)) + '}' if keys else 'set()'

        return (
            f'Changes(added={show(self.added)}, deleted={show(self.deleted)}, mutated={show(self.mutated)})'
        )

    def counts(self) -> dict[str, int]:
        return {'added': len(self.added), 'deleted': len(self.deleted), 'mutated': len(self.mutated)}


@dataclass(frozen=True)
class DiffResult:
    """How snapshot ``b`` differs from snapshot ``a``.

    ``columns`` has an entry for every column present on either side (empty ``Changes`` when the
    column did not change): sample keys for flat columns, ``(key, subkey)`` pairs for nested ones. A
    column that only one side has shows all its samples as added (or deleted). ``schema_changes``
    names the columns added, deleted, or whose schema (dtype, shape, backend...) changed; ``metadata``
    the metadata keys. ``a`` and ``b`` are the commit digests compared ('' for the staging area or a
    branch without commits).
    """

    a: str
    b: str
    columns: dict[str, Changes]
    schema_changes: Changes
    metadata: Changes

    def __bool__(self) -> bool:
        return bool(self.schema_changes or self.metadata or any(self.columns.values()))

    @property
    def changed_columns(self) -> list[str]:
        return sorted(name for name, ch in self.columns.items() if ch)

    def to_dict(self) -> dict[str, Any]:
        return {
            'a': self.a,
            'b': self.b,
            'schema_changes': self.schema_changes.to_dict(),
            'metadata': self.metadata.to_dict(),
            'columns': {name: self.columns[name].to_dict() for name in sorted(self.columns)},
        }


# ---------------------------------------------------------------------------------------- raw diffs


def split_nested_value(value: bytes | None) -> tuple[Digest, int]:
    """An outer value of a nested column: (inner tree root, number of subsamples); absent -> empty."""
    if value is None:
        return EMPTY_ROOT, 0
    return Digest(value[:DIGEST_SIZE]), decode_varint(value, DIGEST_SIZE)[0]


def nested_diff(
    src: NodeSource, a: bytes, b: bytes
) -> Iterator[tuple[bytes, bytes, bytes | None, bytes | None]]:
    """(encoded key, encoded subkey, ref in a, ref in b) for every subsample that differs."""
    for kenc, va, vb in tree_diff(src, a, b):
        ra, _ = split_nested_value(va)
        rb, _ = split_nested_value(vb)
        for senc, sa, sb in tree_diff(src, ra, rb):
            yield kenc, senc, sa, sb


def _classify(changes: Iterator[tuple[Any, bytes | None, bytes | None]]) -> Changes:
    added: set[Any] = set()
    deleted: set[Any] = set()
    mutated: set[Any] = set()
    for key, va, vb in changes:
        if va is None:
            added.add(key)
        elif vb is None:
            deleted.add(key)
        else:
            mutated.add(key)
    return Changes(frozenset(added), frozenset(deleted), frozenset(mutated))


def column_changes(src: NodeSource, a: ColumnState | None, b: ColumnState | None) -> Changes:
    """Sample changes of one column from state ``a`` to state ``b`` (either may be absent)."""
    if a == b or (a is None and b is None):
        return Changes()
    if a is not None and b is not None and a.schema.nested != b.schema.nested:
        # the layout changed (the column was replaced): every old sample is gone, every new one added
        gone, new = column_changes(src, a, None), column_changes(src, None, b)
        return Changes(new.added, gone.deleted, frozenset())
    state = b if b is not None else a
    assert state is not None
    ra = a.root if a is not None else EMPTY_ROOT
    rb = b.root if b is not None else EMPTY_ROOT
    if state.schema.nested:
        pairs = (
            ((decode_one_key(k), decode_one_key(s)), va, vb) for k, s, va, vb in nested_diff(src, ra, rb)
        )
        return _classify(pairs)
    return _classify((decode_one_key(k), va, vb) for k, va, vb in tree_diff(src, ra, rb))


def diff_snapshots(
    src: NodeSource, a: Snapshot, b: Snapshot, *, a_name: str = '', b_name: str = ''
) -> DiffResult:
    """Everything that differs from ``a`` to ``b``; cost follows the size of the difference."""
    columns: dict[str, Changes] = {}
    added: set[str] = set()
    deleted: set[str] = set()
    mutated: set[str] = set()
    for name in sorted(set(a.columns) | set(b.columns)):
        sa, sb = a.columns.get(name), b.columns.get(name)
        if sa is None:
            added.add(name)
        elif sb is None:
            deleted.add(name)
        elif sa.schema != sb.schema:
            mutated.add(name)
        columns[name] = column_changes(src, sa, sb)
    metadata = _classify(
        (str(decode_one_key(k)), va, vb) for k, va, vb in tree_diff(src, a.metadata_root, b.metadata_root)
    )
    schema = Changes(frozenset(added), frozenset(deleted), frozenset(mutated))
    return DiffResult(a_name, b_name, columns, schema, metadata)
