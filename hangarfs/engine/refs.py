"""Refs: branch and tag names -> commits, moved only by compare-and-swap.

A ref is stored as ``branch:NAME``, ``tag:NAME`` or ``remote:REMOTE/NAME`` (make them with
:func:`branch_ref`, :func:`tag_ref` and :func:`remote_branch_ref`, never by hand) in the history
environment's ``refs`` table. A branch names a commit digest (``''`` while it has no commit); a tag
names an annotated :class:`TagRecord` (or, written by another tool, a commit directly).

A *remote-tracking branch* (``origin/master``, as Hangar and git name it) records where a remote's
branch was when it was last fetched or pushed. It lives in its own namespace: a local branch name
can hold no ``/``, so the two can never collide; a fetch moves it without the writer lock; and no
writer can commit onto it (a commit there would be lost at the next fetch). Reading it works as for
a branch: ``branch_head('origin/master')``, ``resolve('origin/master')``, checkouts, logs, mounts.

Every change goes through :meth:`Refs.set_if_equals` inside one write transaction, so two writers
can never lose each other's update silently (dulwich's ``RefsContainer`` does the same).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NewType

from hangarfs.engine import revparse
from hangarfs.engine.lmdbenv import Txn
from hangarfs.engine.objects import ObjectStore
from hangarfs.engine.tables import Table
from hangarfs.errors import AmbiguousRef, RefMoved, RefNotFound

RefName = NewType('RefName', str)
BRANCH = 'branch'
TAG = 'tag'
REMOTE = 'remote'
MIN_PREFIX = 4  # hex digits needed to name a commit by a prefix of its digest


def branch_ref(name: str) -> RefName:
    return RefName(f'{BRANCH}:{name}')


def tag_ref(name: str) -> RefName:
    return RefName(f'{TAG}:{name}')


def remote_branch_ref(name: str) -> RefName:
    """The ref of the remote-tracking branch ``name`` (``'origin/master'``)."""
    return RefName(f'{REMOTE}:{name}')


def is_remote_branch_name(name: str) -> bool:
    """True for a remote-tracking branch name (``REMOTE/BRANCH``): local names hold no ``/``."""
    return isinstance(name, str) and '/' in name


@dataclass(frozen=True)
class ResolvedRef:
    """What a user-given ref named: a commit, and the branch or tag it came through (if any)."""

    commit: str  # '' for a branch without commits
    branch: str | None = None
    tag: str | None = None


class Refs:
    """The refs of one repository."""

    def __init__(self, table: Table, objects: ObjectStore, writer_branch: Callable[[], str]) -> None:
        self._table = table
        self._objects = objects
        self._writer_branch = writer_branch  # the branch the staging area is on: what HEAD names

    # ------------------------------------------------------------------ reading

    def get(self, ref: RefName, *, txn: Txn | None = None) -> str | None:
        v = self._table.get(ref.encode(), txn=txn)
        return v.decode() if v is not None else None

    def list(self, kind: str) -> dict[str, str]:
        """Every ref of a kind ('branch' or 'tag'): name -> what it names."""
        prefix = f'{kind}:'.encode()
        return {k[len(prefix) :].decode(): v.decode() for k, v in self._table.items(prefix)}

    def branch_head(self, name: str) -> str | None:
        """The commit a branch names ('' before its first commit), or None if there is no branch.
        ``REMOTE/NAME`` names a remote-tracking branch (read-only; see the module docstring)."""
        if is_remote_branch_name(name):
            return self.get(remote_branch_ref(name))
        return self.get(branch_ref(name))

    def remote_branches(self) -> dict[str, str]:
        """Every remote-tracking branch (``origin/master`` -> commit)."""
        return self.list(REMOTE)

    def branches(self) -> dict[str, str]:
        return self.list(BRANCH)

    def tag_commit(self, name: str) -> str | None:
        """The commit a tag fixes, or None if there is no such tag."""
        target = self.get(tag_ref(name))
        if target is None:
            return None
        record = self._objects.tag_record(bytes.fromhex(target))
        return record.commit if record is not None else target

    def resolve(self, ref: str) -> ResolvedRef:
        """A branch name, tag name, full commit digest or unique prefix of one (at least 4 hex digits),
        HEAD, or any of those followed by ``~N`` / ``^N`` (see ``revparse.py``)."""
        if not isinstance(ref, str) or not ref:
            raise RefNotFound(str(ref))
        head = self.branch_head(ref)
        if head is not None:
            return ResolvedRef(head, branch=ref)
        tagged = self.tag_commit(ref)
        if tagged is not None:
            return ResolvedRef(tagged, tag=ref)
        if revparse.is_revision(ref):  # HEAD, master~1, v1^2
            return revparse.resolve_revision(self, ref)
        return ResolvedRef(self.resolve_commit(ref))

    def head(self) -> ResolvedRef:
        """What HEAD names: the head of the writer's branch (the branch the staging area is on)."""
        branch = self._writer_branch()
        head = self.branch_head(branch)
        if head is None:
            raise RefNotFound(revparse.HEAD, message=f'HEAD is branch {branch!r}, which does not exist')
        return ResolvedRef(head, branch=branch)

    def parents(self, commit: str) -> tuple[str, ...]:
        return self._objects.commit(commit).parents

    def resolve_commit(self, ref: str) -> str:
        """The one commit whose hex digest starts with ``ref``."""
        text = ref.lower()
        if len(text) < MIN_PREFIX or any(c not in '0123456789abcdef' for c in text):
            raise RefNotFound(ref)
        found = self._objects.commits_with_prefix(text, limit=6)
        if not found:
            raise RefNotFound(ref)
        if len(found) > 1:
            raise AmbiguousRef(ref, found)
        return found[0]

    # ------------------------------------------------------------------ moving

    def set_if_equals(self, ref: RefName, expected: str | None, new: str | None, *, txn: Txn) -> None:
        """Move ``ref`` from ``expected`` to ``new`` inside ``txn``, or raise RefMoved.

        ``None`` means absent: ``expected=None`` creates, ``new=None`` deletes.
        """
        found = self.get(ref, txn=txn)
        if found != expected:
            raise RefMoved(ref, expected, found)
        if new is None:
            self._table.delete(ref.encode(), txn=txn)
        else:
            self._table.put(ref.encode(), new.encode(), txn=txn)

    def add_if_new(self, ref: RefName, new: str, *, txn: Txn) -> None:
        """Create ``ref``; RefMoved if it exists."""
        self.set_if_equals(ref, None, new, txn=txn)

    def remove_if_equals(self, ref: RefName, expected: str, *, txn: Txn) -> None:
        """Delete ``ref`` if it still names ``expected``; RefMoved otherwise."""
        self.set_if_equals(ref, expected, None, txn=txn)
