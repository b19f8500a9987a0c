"""``co.diff``: differences seen from a checkout (Hangar's ``co.diff.commit / branch / staged / status``).

Each method returns a :class:`~hangarfs.engine.hangar_diff.DiffView`: Hangar's ``DiffAndConflicts``
(what merging the other ref into this checkout would do, conflicts included) and hangarfs's two-way
``DiffResult`` (``.changes``: how the other ref differs from this checkout's commit), each computed
when first read.
"""

from __future__ import annotations

from hangarfs.engine.access import ReadAccess
from hangarfs.engine.commit import build_snapshot
from hangarfs.engine.diff import DiffResult, OverlaySource, diff_snapshots
from hangarfs.engine.hangar_diff import (
    NO_CONFLICTS,
    DiffAndConflicts,
    DiffView,
    hangar_changes,
    merge_preview,
)
from hangarfs.engine.records import Snapshot
from hangarfs.engine.staged_access import StagedAccess
from hangarfs.engine.staging_status import has_staged_changes
from hangarfs.errors import RefNotFound

CLEAN = 'CLEAN'
DIRTY = 'DIRTY'


class CheckoutDiff:
    """Differences from a checkout (seen through its access) to another ref."""

    def __init__(self, access: ReadAccess) -> None:
        self._access = access

    def commit(self, ref: str) -> DiffView:
        """Against ``ref`` (a commit digest, unique prefix, tag or branch)."""
        self._access.check_open()
        return self._against(self._access.store.refs.resolve(ref).commit)

    def branch(self, name: str) -> DiffView:
        """Against the head of branch ``name``."""
        self._access.check_open()
        head = self._access.store.refs.branch_head(name)
        if head is None:
            raise RefNotFound(name, 'branch')
        return self._against(head)

    def _ours(self) -> tuple[Snapshot, OverlaySource]:
        """This side of a merge preview: the checkout's commit (a writer overrides: its staging area)."""
        return self._access.snapshot, OverlaySource(self._access.store.nodes)

    def _against(self, commit: str) -> DiffView:
        access = self._access
        store, head, snapshot = access.store, access.commit, access.snapshot

        def changes() -> DiffResult:
            return diff_snapshots(
                store.nodes, snapshot, store.objects.snapshot(commit), a_name=head, b_name=commit
            )

        def hangar() -> DiffAndConflicts:
            ours, src = self._ours()
            return merge_preview(store, src, head, ours, commit)

        return DiffView(changes, hangar)


class WriterCheckoutDiff(CheckoutDiff):
    """Adds the staging area: what the next commit would change, and whether there is anything."""

    def __init__(self, access: StagedAccess) -> None:
        super().__init__(access)
        self._writer = access

    def _ours(self) -> tuple[Snapshot, OverlaySource]:
        writer = self._writer
        writer.check_open()
        writer.flush()
        staged, nodes = build_snapshot(writer.store, writer.staging, writer.snapshot)
        return staged, OverlaySource(writer.store.nodes, nodes)

    def staged(self) -> DiffView:
        """The staged changes against the base commit (``b`` is '': the staging area); no conflicts."""
        staged, src = self._ours()
        base = self._writer.snapshot
        result = diff_snapshots(src, base, staged, a_name=self._writer.commit)
        return DiffView(
            lambda: result, lambda: DiffAndConflicts(hangar_changes(result, base, staged), NO_CONFLICTS)
        )

    def status(self) -> str:
        """'DIRTY' when committing now would record a change, else 'CLEAN'."""
        writer = self._writer
        writer.check_open()
        writer.flush()
        return DIRTY if has_staged_changes(writer.store, writer.staging) else CLEAN
