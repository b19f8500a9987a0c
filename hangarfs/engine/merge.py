"""Merging a branch (or tag, or commit) into a branch.

- Already contained (``dev`` is an ancestor of ``master``): nothing changes; the head is returned.
- Fast-forward (``master`` is an ancestor of ``dev``): ``master`` moves to ``dev``'s commit.
- Otherwise a three-way merge (``threeway.py``) against the merge base (``mergebase.py``, found by
  walking the commit graph, never by time) makes a commit whose parents are ``master``'s head and
  ``dev``'s commit. Conflicts without a strategy raise :class:`MergeConflictError` before anything is
  written; with ``'ours'`` or ``'theirs'`` they are resolved one way and listed in the commit message.

Criss-cross histories (two or more merge bases, as after merging two branches into each other) are
merged *recursively*, as git does: the merge bases are merged into a virtual base (itself against their
own merge bases), kept in memory only, and the real merge is made against it. Where the merge bases
disagree with each other, the virtual base holds a marker that equals no real value, so both sides
count as changed there: the result is their common value if they agree, else a conflict. So nothing is
ever decided by picking one base over another, and a change that one side made after the criss-cross
is merged as in any three-way merge.

The caller holds the writer lock and passes the staging area; a dirty staging area refuses to merge.
"""

from __future__ import annotations

from dataclasses import dataclass

from hangarfs.engine.commit import write_commit
from hangarfs.engine.diff import OverlaySource
from hangarfs.engine.history import ParentsOf
from hangarfs.engine.mergebase import make_parents_of, merge_bases
from hangarfs.engine.records import EMPTY_SNAPSHOT, Snapshot
from hangarfs.engine.refs import branch_ref
from hangarfs.engine.staging import StagingArea
from hangarfs.engine.staging_status import settle
from hangarfs.engine.store import RepoStore
from hangarfs.engine.threeway import STRATEGIES, Conflict, describe_resolution, merge_snapshots
from hangarfs.engine.writer import WriterSession
from hangarfs.errors import MergeConflictError, MergeError, RefNotFound, StagingDirty

FAST_FORWARD = 'fast-forward'
MERGE_COMMIT = 'merge'
UP_TO_DATE = 'up-to-date'


@dataclass(frozen=True)
class MergeResult:
    """What a merge did: ``kind`` is 'fast-forward', 'merge' (a new two-parent commit) or 'up-to-date'."""

    commit: str  # the branch's head afterwards
    kind: str
    branch: str
    bases: tuple[str, ...] = ()
    resolved: tuple[Conflict, ...] = ()


def virtual_base(store: RepoStore, src: OverlaySource, parents_of: ParentsOf, bases: list[str]) -> Snapshot:
    """The snapshot to merge against: the one merge base, or the recursive merge of several."""
    if not bases:
        return EMPTY_SNAPSHOT
    acc = store.objects.snapshot(bases[0])
    heads = [bases[0]]
    for other in bases[1:]:
        inner = virtual_base(store, src, parents_of, merge_bases(parents_of, heads, [other]))
        outcome = merge_snapshots(src, inner, acc, store.objects.snapshot(other), virtual=True)
        src.add(outcome.nodes)  # nodes of the virtual base live in memory only
        acc = outcome.snapshot
        heads.append(other)
    return acc


def merge_into_branch(
    store: RepoStore,
    staging: StagingArea,
    *,
    master_branch: str,
    dev_ref: str,
    message: str,
    author: str,
    email: str,
    strategy: str | None = None,
) -> MergeResult:
    """Merge ``dev_ref`` into ``master_branch`` (the caller holds the writer lock)."""
    if strategy is not None and strategy not in STRATEGIES:
        raise ValueError(f"expected strategy 'ours', 'theirs' or None, got {strategy!r} instead")
    if not isinstance(message, str) or not message.strip():
        raise ValueError('a merge needs a non-empty message')
    master_head = store.refs.branch_head(master_branch)
    if master_head is None:
        raise RefNotFound(master_branch, 'branch')
    dev = store.refs.resolve(dev_ref)
    if dev.branch == master_branch:
        raise MergeError(f'cannot merge branch {master_branch!r} into itself; name another branch to merge')
    if not dev.commit:
        raise MergeError(f'{dev_ref!r} has no commits yet, so there is nothing to merge')
    info = staging.info()
    if settle(store, staging):  # real changes (entries that change nothing are dropped)
        raise StagingDirty(
            f'Changes are currently pending in the staging area (uncommitted, on branch {info.branch!r}); '
            'commit them, or discard them (reset_staging_area(), `hangarfs reset --hard`), before merging'
        )
    parents_of = make_parents_of(store.objects.commit)
    bases = merge_bases(parents_of, [master_head], [dev.commit]) if master_head else []
    if master_head and bases == [dev.commit]:
        return MergeResult(master_head, UP_TO_DATE, master_branch, tuple(bases))
    if not master_head or bases == [master_head]:
        with store.history.write() as txn:
            store.refs.set_if_equals(branch_ref(master_branch), master_head, dev.commit, txn=txn)
        result = MergeResult(dev.commit, FAST_FORWARD, master_branch, tuple(bases))
    else:
        src = OverlaySource(store.nodes)
        base = virtual_base(store, src, parents_of, bases)
        ours, theirs = store.objects.snapshot(master_head), store.objects.snapshot(dev.commit)
        outcome = merge_snapshots(src, base, ours, theirs, strategy=strategy)
        if outcome.conflicts:
            raise MergeConflictError(outcome.conflicts, master_branch, dev_ref)
        if outcome.resolved and strategy is not None:
            message = message.rstrip() + '\n\n' + describe_resolution(outcome.resolved, strategy)
        commit = write_commit(
            store,
            branch=master_branch,
            expected_head=master_head,
            parents=(master_head, dev.commit),
            snapshot=outcome.snapshot,
            nodes=outcome.nodes,
            message=message,
            author=author,
            email=email,
        )
        result = MergeResult(commit, MERGE_COMMIT, master_branch, tuple(bases), tuple(outcome.resolved))
    if info.branch == master_branch:
        staging.set_info(master_branch, result.commit)  # the (clean) staging area now starts there
    return result


def merge_with_writer_lock(
    store: RepoStore,
    *,
    master_branch: str,
    dev_ref: str,
    message: str,
    strategy: str | None = None,
) -> MergeResult:
    """Become the writer (or raise WriterLockHeld naming the holder), merge, stop being the writer."""
    # the staging area's base may move, so it is opened exactly as a writer checkout opens it
    with WriterSession(store, purpose=f'merge {dev_ref} into {master_branch}') as session:
        return merge_into_branch(
            store,
            session.staging,
            master_branch=master_branch,
            dev_ref=dev_ref,
            message=message,
            author=store.config_get('user_name'),
            email=store.config_get('user_email'),
            strategy=strategy,
        )
