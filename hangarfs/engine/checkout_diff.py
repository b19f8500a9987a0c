"""``co.diff``: differences seen from a checkout (Hangar's ``co.diff.commit / branch / staged / status``).

Each method returns a :class:`~hangarfs.engine.hangar_diff.DiffView`: Hangar's ``DiffAndConflicts``
(what merging the other ref into this checkout would do, conflicts included) and hangarfs's two-way
``DiffResult`` (``.changes``: how the other ref differs from this checkout's commit), each computed
when first read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from hangarfs.engine.staging_status import has_staged_changes
from hangarfs.errors import RefNotFound

if TYPE_CHECKING:
    from hangarfs.engine.checkout import Checkout, WriterCheckout

CLEAN = 'CLEAN'
DIRTY = 'DIRTY'


class CheckoutDiff:
    """Differences from this checkout to another ref."""

    def __init__(self, checkout: Checkout) -> None:
        self._co = checkout

    def commit(self, ref: str) -> DiffView:
        """Against ``ref`` (a commit digest, unique prefix, tag or branch)."""
        self._co._check_open()
        return self._against(self._co._store.refs.resolve(ref).commit)

    def branch(self, name: str) -> DiffView:
        """Against the head of branch ``name``."""
        self._co._check_open()
        head = self._co._store.refs.branch_head(name)
        if head is None:
            raise RefNotFound(name, 'branch')
        return self._against(head)

    def _ours(self) -> tuple[Snapshot, OverlaySource]:
        """This side of a merge preview: the checkout's commit (a writer overrides: its staging area)."""
        return self._co._snapshot, OverlaySource(self._co._store.nodes)

    def _against(self, commit: str) -> DiffView:
        co = self._co
        store, head, snapshot = co._store, co._commit, co._snapshot

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

    _co: WriterCheckout

    def _ours(self) -> tuple[Snapshot, OverlaySource]:
        co = self._co
        co._check_writable()
        co._flush_batch()
        staged, nodes = build_snapshot(co._store, co._staging, co._snapshot)
        return staged, OverlaySource(co._store.nodes, nodes)

    def staged(self) -> DiffView:
        """The staged changes against the base commit (``b`` is '': the staging area); no conflicts."""
        co = self._co
        co._check_writable()
        staged, src = self._ours()
        result = diff_snapshots(src, co._snapshot, staged, a_name=co._commit)
        base = co._snapshot
        return DiffView(
            lambda: result, lambda: DiffAndConflicts(hangar_changes(result, base, staged), NO_CONFLICTS)
        )

    def status(self) -> str:
        """'DIRTY' when committing now would record a change, else 'CLEAN'."""
        co = self._co
        co._check_writable()
        co._flush_batch()
        return DIRTY if has_staged_changes(co._store, co._staging) else CLEAN
