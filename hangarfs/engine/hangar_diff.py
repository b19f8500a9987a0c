"""Hangar 0.5's diff shape, from a checkout: "what would merging this in do", conflicts included.

``co.diff.branch(name)``, ``co.diff.commit(ref)`` and ``co.diff.staged()`` return a :class:`DiffView`.
Read as Hangar's ``DiffAndConflicts(diff, conflict)`` (fields, ``[0]``/``[1]``, unpacking, ``==``):

- ``diff`` is a ``DiffOut(added, deleted, mutated)`` of ``Changes(schema, samples)``: ``schema`` maps a
  ``ColumnSchemaKey(column, layout)`` to the ``DataRecordVal(digest)`` of its schema, ``samples`` is a
  tuple of ``FlatColumnDataKey(column, sample)`` / ``NestedColumnDataKey(column, sample, subsample)``.
  As in Hangar: when this checkout's commit is an ancestor of the other (a fast-forward), the changes
  from this checkout to the other; otherwise (a three-way merge) the changes from the other to this
  checkout. A writer's side is its staging area, as in Hangar.
- ``conflict`` is ``Conflicts(t1, t21, t22, t3, conflict)``: keys added on both sides with different
  values (t1), deleted here and changed there (t21), changed here and deleted there (t22), changed on
  both to different values (t3), found against the merge base (the recursive virtual base of a
  criss-cross history) as ``merge`` finds them. Conflicting *metadata* keys (which Hangar 0.5 no longer
  has) set ``conflict`` True without a t-entry; ``repo.merge`` names them.

Read as hangarfs's result, the same object is the two-way :class:`~hangarfs.engine.diff.DiffResult` from
this checkout to the other (``.changes``, and ``.columns``, ``.schema_changes``, ``.metadata``, ``.a``,
``.b``, ``to_dict()``, truth value); ``repo.diff(a, b)`` returns that result alone. Each part is
computed when first asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from typing import Any, NamedTuple

from hangarfs.engine.diff import DiffResult, OverlaySource, diff_snapshots
from hangarfs.engine.keys import Key, key_sort_order
from hangarfs.engine.merge import virtual_base
from hangarfs.engine.mergebase import make_parents_of, merge_bases
from hangarfs.engine.records import ColumnState, Snapshot, canonical_json, digest_of
from hangarfs.engine.store import RepoStore
from hangarfs.engine.threeway import ADD_ADD, DELETE_MUTATE, MUTATE_DELETE, Conflict, merge_snapshots


class ColumnSchemaKey(NamedTuple):
    column: str
    layout: str


class FlatColumnDataKey(NamedTuple):
    column: str
    sample: Key

    @property
    def layout(self) -> str:
        return 'flat'


class NestedColumnDataKey(NamedTuple):
    column: str
    sample: Key
    subsample: Key

    @property
    def layout(self) -> str:
        return 'nested'


class DataRecordVal(NamedTuple):
    digest: str


class Changes(NamedTuple):
    schema: dict[ColumnSchemaKey, DataRecordVal]
    samples: tuple[FlatColumnDataKey | NestedColumnDataKey, ...]


class DiffOut(NamedTuple):
    added: Changes
    deleted: Changes
    mutated: Changes


class Conflicts(NamedTuple):
    """t1: added on both sides, different values; t21: deleted here, changed there; t22: changed
    here, deleted there; t3: changed on both, different values; conflict: any of them (or metadata)."""

    t1: Changes
    t21: Changes
    t22: Changes
    t3: Changes
    conflict: bool


class DiffAndConflicts(NamedTuple):
    diff: DiffOut
    conflict: Conflicts


NO_CHANGES = Changes({}, ())
NO_CONFLICTS = Conflicts(NO_CHANGES, NO_CHANGES, NO_CHANGES, NO_CHANGES, False)


def _sample_key(column: str, key: Any) -> FlatColumnDataKey | NestedColumnDataKey:
    if isinstance(key, tuple):
        return NestedColumnDataKey(column, key[0], key[1])
    return FlatColumnDataKey(column, key)


def _sample_order(k: FlatColumnDataKey | NestedColumnDataKey) -> tuple[Any, ...]:
    return (k.column, *(key_sort_order(part) for part in k[1:]))


def _schema_digest(state: ColumnState) -> DataRecordVal:
    return DataRecordVal(digest_of(canonical_json(state.schema.to_dict())).hex())


def hangar_changes(result: DiffResult, a: Snapshot, b: Snapshot) -> DiffOut:
    """A two-way DiffResult from ``a`` to ``b`` in Hangar's shape."""

    def part(kind: str) -> Changes:
        side = a if kind == 'deleted' else b
        schema = {
            ColumnSchemaKey(name, side.columns[name].schema.layout): _schema_digest(side.columns[name])
            for name in sorted(getattr(result.schema_changes, kind))
        }
        samples = [_sample_key(name, key) for name, ch in result.columns.items() for key in getattr(ch, kind)]
        return Changes(schema, tuple(sorted(samples, key=_sample_order)))

    return DiffOut(part('added'), part('deleted'), part('mutated'))


def hangar_conflicts(conflicts: Iterable[Conflict], ours: Snapshot, theirs: Snapshot) -> Conflicts:
    """Conflicts found by a three-way merge, sorted into Hangar's t1/t21/t22/t3."""
    kinds = {ADD_ADD: 't1', DELETE_MUTATE: 't21', MUTATE_DELETE: 't22'}
    schema: dict[str, dict[ColumnSchemaKey, DataRecordVal]] = {t: {} for t in ('t1', 't21', 't22', 't3')}
    samples: dict[str, list[FlatColumnDataKey | NestedColumnDataKey]] = {t: [] for t in schema}
    any_conflict = False
    for c in conflicts:
        any_conflict = True
        t = kinds.get(c.kind, 't3')
        if c.column is None:
            continue  # a metadata key: no place in Hangar 0.5's shape, but it is a conflict
        if c.key is None:
            state = ours.columns.get(c.column) or theirs.columns.get(c.column)
            layout = state.schema.layout if state is not None else 'flat'
            schema[t][ColumnSchemaKey(c.column, layout)] = DataRecordVal(c.master or c.dev or '')
        else:
            samples[t].append(_sample_key(c.column, c.key))
    parts = {t: Changes(schema[t], tuple(sorted(samples[t], key=_sample_order))) for t in schema}
    return Conflicts(parts['t1'], parts['t21'], parts['t22'], parts['t3'], any_conflict)


def merge_preview(
    store: RepoStore, src: OverlaySource, head: str, ours: Snapshot, dev_commit: str
) -> DiffAndConflicts:
    """Hangar's diff of merging ``dev_commit`` into ``ours`` (the state at, or staged on, ``head``)."""
    theirs = store.objects.snapshot(dev_commit)
    parents_of = make_parents_of(store.objects.commit)
    bases = merge_bases(parents_of, [head], [dev_commit]) if head else []
    if not head or bases == [head]:  # a fast-forward: what dev brings
        forward = diff_snapshots(src, ours, theirs)
        return DiffAndConflicts(hangar_changes(forward, ours, theirs), NO_CONFLICTS)
    base = virtual_base(store, src, parents_of, bases)
    outcome = merge_snapshots(src, base, ours, theirs)
    backward = diff_snapshots(src, theirs, ours)  # Hangar's three-way diff runs from dev to master
    return DiffAndConflicts(
        hangar_changes(backward, theirs, ours), hangar_conflicts(outcome.conflicts, ours, theirs)
    )


class DiffView:
    """Hangar's ``DiffAndConflicts`` and hangarfs's ``DiffResult`` in one object (module docstring)."""

    def __init__(self, changes: Callable[[], DiffResult], hangar: Callable[[], DiffAndConflicts]) -> None:
        self._changes_of = changes
        self._hangar_of = hangar

    @cached_property
    def changes(self) -> DiffResult:
        """hangarfs's two-way result, from this checkout to the other (or to the staging area)."""
        return self._changes_of()

    @cached_property
    def hangar(self) -> DiffAndConflicts:
        """Hangar's ``DiffAndConflicts``, a plain tuple."""
        return self._hangar_of()

    # Hangar's shape

    @property
    def diff(self) -> DiffOut:
        return self.hangar.diff

    @property
    def conflict(self) -> Conflicts:
        return self.hangar.conflict

    def __getitem__(self, index: int) -> Any:
        return self.hangar[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.hangar)

    def __len__(self) -> int:
        return 2

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DiffView):
            return self.hangar == other.hangar
        if isinstance(other, tuple):
            return self.hangar == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    # hangarfs's shape

    @property
    def a(self) -> str:
        return self.changes.a

    @property
    def b(self) -> str:
        return self.changes.b

    @property
    def columns(self) -> Any:
        return self.changes.columns

    @property
    def schema_changes(self) -> Any:
        return self.changes.schema_changes

    @property
    def metadata(self) -> Any:
        return self.changes.metadata

    @property
    def changed_columns(self) -> list[str]:
        return self.changes.changed_columns

    def to_dict(self) -> dict[str, Any]:
        return self.changes.to_dict()

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __repr__(self) -> str:
        return f'<DiffView {self.hangar!r}>'
