"""What the staging area changes, as one definition used everywhere.

The staging area is *dirty* when committing it now would record a change: the snapshot it describes
differs from its base commit's. Writing a sample's own bytes back, or a write later undone, leaves
overlay entries but no change, so it is clean: ``co.diff.status()``, ``hangarfs status``, commit's
``NothingToCommit``, checkout's and merge's ``StagingDirty`` all ask :func:`has_staged_changes`, and a
writer that finds a clean staging area with leftover entries clears it (:func:`settle`) instead of
refusing to move.

Everything here reads the staging area without becoming the writer (``hangarfs status`` runs while a
staging mount holds the writer lock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hangarfs.engine.commit import build_snapshot
from hangarfs.engine.diff import DiffResult, OverlaySource, diff_snapshots
from hangarfs.engine.lock import WriterLock
from hangarfs.engine.records import Snapshot
from hangarfs.engine.staging import StagingArea
from hangarfs.engine.store import RepoStore

DEFAULT_BRANCH = 'master'


def staged_snapshot(store: RepoStore, staging: StagingArea) -> tuple[Snapshot, Snapshot, dict[bytes, bytes]]:
    """(the base commit's snapshot, the snapshot the staging area describes, its new tree nodes)."""
    base = store.objects.snapshot(staging.info().base)
    if not staging.is_dirty():
        return base, base, {}
    staged, nodes = build_snapshot(store, staging, base)
    return base, staged, nodes


def has_staged_changes(store: RepoStore, staging: StagingArea) -> bool:
    """True when committing now would record a change (the net difference from the base commit)."""
    if not staging.is_dirty():
        return False
    base, staged, _ = staged_snapshot(store, staging)
    return staged.digest != base.digest


def settle(store: RepoStore, staging: StagingArea) -> bool:
    """Clear a staging area whose entries change nothing; True if it holds real changes.

    The caller is the writer (it holds the writer lock)."""
    if has_staged_changes(store, staging):
        return True
    if staging.is_dirty():
        info = staging.info()
        staging.clear(info.branch, info.base, info.generation + 1)
    return False


def staged_diff(store: RepoStore, staging: StagingArea) -> DiffResult:
    """The staged changes against the base commit (``b`` is '': the staging area)."""
    base, staged, nodes = staged_snapshot(store, staging)
    return diff_snapshots(OverlaySource(store.nodes, nodes), base, staged, a_name=staging.info().base)


@dataclass(frozen=True)
class StagingStatus:
    """The writer's branch and base, who holds the writer lock, and the net staged changes."""

    branch: str
    base: str  # the commit the staging area starts from ('' when the branch has no commit yet)
    head: str  # the branch's head now (differs from base when the branch moved under staged work)
    lock_holder: dict[str, Any] | None
    diff: DiffResult

    @property
    def clean(self) -> bool:
        return not self.diff

    def column_counts(self) -> dict[str, dict[str, int]]:
        """Changed columns -> {'added': n, 'deleted': n, 'mutated': n} samples."""
        return {name: self.diff.columns[name].counts() for name in self.diff.changed_columns}


def staging_status(store: RepoStore) -> StagingStatus:
    staging = StagingArea(store)
    info = staging.info()
    branch = info.branch or DEFAULT_BRANCH
    return StagingStatus(
        branch=branch,
        base=info.base,
        head=store.refs.branch_head(branch) or '',
        lock_holder=WriterLock(store.lock_path, store.path).is_locked_by_other(),
        diff=staged_diff(store, staging),
    )


@dataclass(frozen=True)
class ColumnRow:
    """One column as ``hangarfs column list`` shows it."""

    name: str
    kind: str
    layout: str
    dtype: str | None  # numpy dtype name, for arrays
    shape: tuple[int, ...] | None
    variable_shape: bool
    backend: str
    samples: int
    staged: str  # '' (as committed), 'new' or 'changed' (staged changes to its samples or schema)


def _snapshot_at(store: RepoStore, ref: str | None) -> tuple[Snapshot, Snapshot, OverlaySource]:
    """(base, snapshot, node source) of a ref, or of the staging area when ``ref`` is None."""
    if ref is not None:
        snap = store.objects.snapshot(store.refs.resolve(ref).commit)
        return snap, snap, OverlaySource(store.nodes)
    base, staged, nodes = staged_snapshot(store, StagingArea(store))
    return base, staged, OverlaySource(store.nodes, nodes)


def staged_columns(store: RepoStore, ref: str | None = None) -> list[ColumnRow]:
    """The columns at ``ref``, or those the staging area describes (committed and staged)."""
    import numpy as np

    from hangarfs.backends import backend_name

    base, snap, _ = _snapshot_at(store, ref)
    rows = []
    for name, state in sorted(snap.columns.items()):
        s = state.schema
        before = base.columns.get(name)
        staged = '' if before == state else ('new' if before is None else 'changed')
        rows.append(
            ColumnRow(
                name,
                s.kind,
                s.layout,
                np.dtype(s.dtype).name if s.dtype else 'heterogeneous',
                s.shape,
                s.variable_shape,
                backend_name(s.backend),
                state.count,
                staged,
            )
        )
    return rows


def staged_metadata(store: RepoStore, ref: str | None = None) -> dict[str, str]:
    """The metadata at ``ref``, or as the staging area describes it."""
    from hangarfs.engine.keys import decode_one_key
    from hangarfs.engine.tree import tree_items

    _, snap, src = _snapshot_at(store, ref)
    return {str(decode_one_key(k)): v.decode('utf-8') for k, v in tree_items(src, snap.metadata_root)}
