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
    base = store.snapshot_of(staging.info().base)
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
        head=store.branch_head(branch) or '',
        lock_holder=WriterLock(store.lock_path, store.path).is_locked_by_other(),
        diff=staged_diff(store, staging),
    )
