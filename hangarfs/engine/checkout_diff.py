"""``co.diff``: differences seen from a checkout (Hangar's ``co.diff.commit / branch / staged / status``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hangarfs.engine.commit import build_snapshot
from hangarfs.engine.diff import DiffResult, OverlaySource, diff_snapshots
from hangarfs.engine.staging_status import has_staged_changes
from hangarfs.errors import RefNotFound

if TYPE_CHECKING:
    from hangarfs.engine.checkout import Checkout, WriterCheckout

CLEAN = 'CLEAN'
DIRTY = 'DIRTY'


class CheckoutDiff:
    """Differences from this checkout's commit to another ref."""

    def __init__(self, checkout: Checkout) -> None:
        self._co = checkout

    def commit(self, ref: str) -> DiffResult:
        """How ``ref`` (a commit digest, unique prefix, tag or branch) differs from this checkout's commit."""
        self._co._check_open()
        return self._against(self._co._store.refs.resolve(ref).commit)

    def branch(self, name: str) -> DiffResult:
        """How the head of branch ``name`` differs from this checkout's commit."""
        self._co._check_open()
        head = self._co._store.refs.branch_head(name)
        if head is None:
            raise RefNotFound(name, 'branch')
        return self._against(head)

    def _against(self, commit: str) -> DiffResult:
        co = self._co
        store = co._store
        return diff_snapshots(
            store.nodes, co._snapshot, store.objects.snapshot(commit), a_name=co._commit, b_name=commit
        )


class WriterCheckoutDiff(CheckoutDiff):
    """Adds the staging area: what the next commit would change, and whether there is anything."""

    _co: WriterCheckout

    def staged(self) -> DiffResult:
        """The staged changes against the base commit (``b`` is '' : the staging area)."""
        co = self._co
        co._check_writable()
        co._flush_batch()
        store = co._store
        staged, nodes = build_snapshot(store, co._staging, co._snapshot)
        return diff_snapshots(OverlaySource(store.nodes, nodes), co._snapshot, staged, a_name=co._commit)

    def status(self) -> str:
        """'DIRTY' when committing now would record a change, else 'CLEAN'."""
        co = self._co
        co._check_writable()
        co._flush_batch()
        return DIRTY if has_staged_changes(co._store, co._staging) else CLEAN
