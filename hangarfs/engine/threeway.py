"""Three-way merge of snapshots: the base, ours (the branch merged into) and theirs (the one merged).

For each column, each sample (``(key, subkey)`` in nested columns) and each metadata key, with ``b``,
``o``, ``t`` its value in base, ours and theirs (absent counts as a value):

- ``o == t``: keep it (the same change on both sides is not a conflict);
- ``t == b``: keep ours; ``o == b``: take theirs;
- otherwise both sides changed it to different results: a :class:`Conflict` of kind ``add/add``
  (absent from the base), ``delete/mutate`` (deleted on ours, changed on theirs), ``mutate/delete`` or
  ``mutate/mutate``.

Columns are merged first as a whole: a column changed on one side only is taken from that side as it
stands (one tree root, no descent). When both changed it, their schemas are merged the same way (a
backend change on one side is taken); samples are merged key by key only if both sides still hold a
column of the same kind, layout, dtype and shape. Otherwise (deleted on one side and changed on the
other, or replaced by an incompatible column) the column itself conflicts, reported with key ``None``.

Cost: ``tree_diff`` of base against each side (equal subtrees skipped) and one ``tree_update``, of
whichever side needs fewer changes to become the result (a tree's shape depends only on its contents,
so both give the same root): it follows the size of the two changes, not of the data.

Conflicts are resolved by ``strategy``: ``'ours'`` keeps ours, ``'theirs'`` takes theirs (whole
columns for column conflicts), ``None`` reports them. ``virtual=True`` builds a *virtual merge base*
for a criss-cross history (see ``merge.py``): every conflict becomes a marker value that equals no real
value, so a later merge against this base sees both sides as changed there, and reports a conflict
unless they agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hangarfs.backends.codec import encode_varint
from hangarfs.engine.diff import split_nested_value
from hangarfs.engine.keys import decode_one_key
from hangarfs.engine.records import (
    DIGEST_SIZE,
    EMPTY_ROOT,
    ColumnSchema,
    ColumnState,
    Digest,
    Snapshot,
    canonical_json,
    digest_of,
)
from hangarfs.engine.samples import SampleCodec
from hangarfs.engine.tree import NodeSource
from hangarfs.engine.tree_build import tree_update
from hangarfs.engine.tree_diff import tree_diff

STRATEGIES = ('ours', 'theirs')
CONFLICT_VALUE = b'\xff<value in conflict in a virtual merge base>\xff'
CONFLICTED_COLUMN = ColumnState(ColumnSchema(kind='<conflicted>'), Digest(b'\xff' * DIGEST_SIZE), 0)

ADD_ADD = 'add/add'
DELETE_MUTATE = 'delete/mutate'
MUTATE_DELETE = 'mutate/delete'
MUTATE_MUTATE = 'mutate/mutate'


class Conflict(NamedTuple):
    """A change made on both sides to different results.

    ``column`` is None for a metadata key. ``key`` is the sample key (``(key, subkey)`` in a nested
    column), the metadata key, or None when the column itself conflicts (its schema, or deleted on one
    side and changed on the other). ``base``, ``master`` and ``dev`` are hex digests of what each side
    holds (the sample digest; for metadata the digest of the UTF-8 value; for a column the digest of
    its record), None where absent (``base`` is None also for a value already in conflict between two
    merge bases).
    """

    column: str | None
    key: Any
    kind: str
    base: str | None
    master: str | None
    dev: str | None

    def __str__(self) -> str:
        where = 'metadata' if self.column is None else f'column {self.column!r}'
        what = 'the column itself' if self.key is None and self.column is not None else f'key {self.key!r}'

        def short(d: str | None) -> str:
            return d[:12] if d else '-'

        return (
            f'{where} {what}: {self.kind} (base {short(self.base)}, master {short(self.master)}, '
            f'dev {short(self.dev)})'
        )


@dataclass
class MergeOutcome:
    """The merged snapshot, the tree nodes it needs that are not stored, and the conflicts met."""

    snapshot: Snapshot
    nodes: dict[bytes, bytes] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)  # unresolved (strategy None)
    resolved: list[Conflict] = field(default_factory=list)  # resolved by the strategy


def conflict_kind(b: Any, o: Any, t: Any) -> str:
    if b is None:
        return ADD_ADD
    if o is None:
        return DELETE_MUTATE
    if t is None:
        return MUTATE_DELETE
    return MUTATE_MUTATE


def _identity(schema: ColumnSchema) -> tuple[Any, ...]:
    """What samples depend on: a column whose identity changed holds samples of another kind."""
    return (
        schema.kind,
        schema.layout,
        schema.dtype,
        schema.shape,
        schema.variable_shape,
        schema.inline_values,
    )


def _column_digest(state: ColumnState | None) -> str | None:
    if state is None or state is CONFLICTED_COLUMN:
        return None
    return digest_of(canonical_json(state.to_dict())).hex()


def _ref_digest(value: bytes | None, digest_of_ref: Callable[[bytes], bytes] | None = None) -> str | None:
    if value is None or value == CONFLICT_VALUE:
        return None
    return (digest_of_ref(value) if digest_of_ref is not None else value[:DIGEST_SIZE]).hex()


def _value_digest(value: bytes | None) -> str | None:
    if value is None or value == CONFLICT_VALUE:
        return None
    return digest_of(value).hex()


# (encoded key, value in base, in ours, in theirs) -> the Conflict to report / the merged value
Reporter = Callable[[bytes, bytes | None, bytes | None, bytes | None], Conflict]
Resolve = Callable[[bytes, bytes | None, bytes | None, bytes | None], bytes | None]
_NO_KEY = object()


def _sample_reporter(column: str, schema: ColumnSchema, outer_key: Any = _NO_KEY) -> Reporter:
    """Makes the Conflict for an encoded (sub)key of ``column`` and its base/ours/theirs refs."""
    digest = SampleCodec(column, schema).digest_of_ref

    def report(k: bytes, b: bytes | None, o: bytes | None, t: bytes | None) -> Conflict:
        key = decode_one_key(k) if outer_key is _NO_KEY else (outer_key, decode_one_key(k))
        return Conflict(
            column,
            key,
            conflict_kind(b, o, t),
            _ref_digest(b, digest),
            _ref_digest(o, digest),
            _ref_digest(t, digest),
        )

    return report


def _metadata_conflict(k: bytes, b: bytes | None, o: bytes | None, t: bytes | None) -> Conflict:
    key = str(decode_one_key(k))
    return Conflict(None, key, conflict_kind(b, o, t), _value_digest(b), _value_digest(o), _value_digest(t))


class _Merger:
    def __init__(self, src: NodeSource, strategy: str | None, virtual: bool) -> None:
        if strategy is not None and strategy not in STRATEGIES:
            raise ValueError(f"expected strategy 'ours', 'theirs' or None, got {strategy!r} instead")
        self.src = src
        self.strategy = strategy
        self.virtual = virtual
        self.nodes: dict[bytes, bytes] = {}
        self.conflicts: list[Conflict] = []
        self.resolved: list[Conflict] = []

    def _conflict(self, conflict: Conflict) -> str | None:
        """Record a conflict; return the side that wins ('ours', 'theirs', 'marker') or None."""
        if self.virtual:
            return 'marker'
        if self.strategy is None:
            self.conflicts.append(conflict)
            return None
        self.resolved.append(conflict)
        return self.strategy

    # ------------------------------------------------------------------ trees of values

    def merge_tree(
        self,
        base: bytes,
        ours: tuple[bytes, int],
        theirs: tuple[bytes, int],
        both: Resolve,
    ) -> tuple[Digest, int]:
        """Merge a key -> value tree; ``ours``/``theirs`` are (root, entry count); returns the same.

        ``both(key, b, o, t)`` gives the value of a key changed on both sides to different values.
        The merged tree is the same whichever side it is built from (a tree's shape depends only on
        its contents), so the changes are applied to the side that needs fewer of them.
        """
        (ro, no), (rt, nt) = ours, theirs
        if rt in (base, ro):
            return Digest(ro), no
        if ro == base:
            return Digest(rt), nt
        ours_changed = {k: o for k, _, o in tree_diff(self.src, base, ro)}
        to_ours: list[tuple[bytes, bytes | None]] = []
        to_theirs: list[tuple[bytes, bytes | None]] = []
        for k, b, t in tree_diff(self.src, base, rt):
            if k not in ours_changed:
                to_ours.append((k, t))
                continue
            o = ours_changed.pop(k)
            if o == t:
                continue
            v = both(k, b, o, t)
            if v != o:
                to_ours.append((k, v))
            if v != t:
                to_theirs.append((k, v))
        to_theirs.extend(ours_changed.items())  # the keys only ours changed
        if len(to_theirs) < len(to_ours):
            root, delta = self._apply(rt, to_theirs)
            return root, nt + delta
        root, delta = self._apply(ro, to_ours)
        return root, no + delta

    def _resolver(self, report: Reporter) -> Resolve:
        """``both`` for a tree of values: a conflict, resolved by the strategy (or a marker)."""

        def resolve(k: bytes, b: bytes | None, o: bytes | None, t: bytes | None) -> bytes | None:
            side = self._conflict(report(k, b, o, t))
            if side == 'marker':
                return CONFLICT_VALUE
            return t if side == 'theirs' else o

        return resolve

    def _apply(self, root: bytes, changes: list[tuple[bytes, bytes | None]]) -> tuple[Digest, int]:
        if not changes:
            return Digest(root), 0
        changes.sort(key=lambda c: c[0])
        upd = tree_update(self.src, root, changes)
        self.nodes.update(upd.nodes)
        return upd.root, upd.delta

    def merge_nested(
        self, name: str, schema: ColumnSchema, base: bytes, ours: tuple[bytes, int], theirs: tuple[bytes, int]
    ) -> tuple[Digest, int]:
        """Merge a nested column's outer tree, entering only samples changed on both sides."""

        def both(k: bytes, b: bytes | None, o: bytes | None, t: bytes | None) -> bytes | None:
            report = _sample_reporter(name, schema, outer_key=decode_one_key(k))
            root, count = self.merge_tree(
                split_nested_value(b)[0], split_nested_value(o), split_nested_value(t), self._resolver(report)
            )
            return root + encode_varint(count) if count else None

        return self.merge_tree(base, ours, theirs, both)

    # ------------------------------------------------------------------ columns

    def merge_column(
        self, name: str, b: ColumnState | None, o: ColumnState | None, t: ColumnState | None
    ) -> ColumnState | None:
        if o == t or t == b:
            return o
        if o == b:
            return t
        if (
            o is None
            or t is None
            or CONFLICTED_COLUMN in (b, o, t)
            or _identity(o.schema) != _identity(t.schema)
        ):
            return self._whole_column(name, b, o, t)
        bs = b.schema if b is not None else None
        schema = o.schema
        if o.schema != t.schema and o.schema == bs:
            schema = t.schema
        elif o.schema != t.schema and t.schema != bs:
            side = self._conflict(self._column_conflict(name, b, o, t))
            if side == 'marker':
                return CONFLICTED_COLUMN
            if side == 'theirs':
                schema = t.schema
        # a base of another kind or layout holds nothing these samples can be merged against
        same_kind = (
            b is not None and b is not CONFLICTED_COLUMN and _identity(b.schema) == _identity(o.schema)
        )
        broot = b.root if same_kind and b is not None else EMPTY_ROOT
        if o.schema.nested:
            root, count = self.merge_nested(name, o.schema, broot, (o.root, o.count), (t.root, t.count))
        else:
            both = self._resolver(_sample_reporter(name, o.schema))
            root, count = self.merge_tree(broot, (o.root, o.count), (t.root, t.count), both)
        return ColumnState(schema, root, count)

    def _column_conflict(
        self, name: str, b: ColumnState | None, o: ColumnState | None, t: ColumnState | None
    ) -> Conflict:
        kind = conflict_kind(b, o, t)  # a column already in conflict between merge bases counts as present
        return Conflict(name, None, kind, _column_digest(b), _column_digest(o), _column_digest(t))

    def _whole_column(
        self, name: str, b: ColumnState | None, o: ColumnState | None, t: ColumnState | None
    ) -> ColumnState | None:
        side = self._conflict(self._column_conflict(name, b, o, t))
        if side == 'marker':
            return CONFLICTED_COLUMN
        return t if side == 'theirs' else o

    # ------------------------------------------------------------------ snapshots

    def merge(self, base: Snapshot, ours: Snapshot, theirs: Snapshot) -> Snapshot:
        columns: dict[str, ColumnState] = {}
        for name in sorted(set(base.columns) | set(ours.columns) | set(theirs.columns)):
            merged = self.merge_column(
                name, base.columns.get(name), ours.columns.get(name), theirs.columns.get(name)
            )
            if merged is not None:
                columns[name] = merged

        meta_root, meta_count = self.merge_tree(
            base.metadata_root,
            (ours.metadata_root, ours.metadata_count),
            (theirs.metadata_root, theirs.metadata_count),
            self._resolver(_metadata_conflict),
        )
        return Snapshot(columns, meta_root, meta_count)


def merge_snapshots(
    src: NodeSource,
    base: Snapshot,
    ours: Snapshot,
    theirs: Snapshot,
    *,
    strategy: str | None = None,
    virtual: bool = False,
) -> MergeOutcome:
    """Three-way merge of ``theirs`` into ``ours`` against ``base`` (see the module docstring)."""
    merger = _Merger(src, strategy, virtual)
    snapshot = merger.merge(base, ours, theirs)
    return MergeOutcome(snapshot, merger.nodes, merger.conflicts, merger.resolved)


def describe_resolution(resolved: Iterable[Conflict], strategy: str, limit: int = 20) -> str:
    """The paragraph a merge commit's message gets when a strategy resolved conflicts."""
    items = list(resolved)
    side = 'master' if strategy == 'ours' else 'dev'
    lines = [f"Conflicts resolved with strategy '{strategy}' (kept the {side} side): {len(items)}"]
    lines += [f'  {c}' for c in items[:limit]]
    if len(items) > limit:
        lines.append(f'  ... and {len(items) - limit} more')
    return '\n'.join(lines)
