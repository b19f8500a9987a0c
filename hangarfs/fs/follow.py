"""Following branches by invalidation: views that move only when asked, and what each move changed.

A mount that follows a branch lets the kernel cache everything for ever (file numbers stand for
versions, see ``inodes.py``) and tells it exactly which names and directories a new commit changed.
:class:`FollowedBranch` is a branch view that switches to a new head only inside :meth:`poll`, which
returns a :class:`Move`: the paths whose meaning changed (from the engine's diff of the two commits,
whose cost follows the size of the change) and a function that switches. The adapter switches while
no request is being answered, then sends the invalidations: so no cached name outlives its meaning
and nothing is served from two commits at once.

:class:`FollowedRefs` is the ``--all-refs`` view with followed branches, and also reports names
appearing under ``branches/``, ``tags/``, ``commits/``. Plain Python, no FUSE; the clock is injectable
(``tests/fs/test_follow.py`` drives it by hand).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hangarfs.engine.diff import diff_snapshots
from hangarfs.engine.store import RepoStore
from hangarfs.errors import RefNotFound
from hangarfs.fs.names import EXTENSIONS, key_to_name
from hangarfs.fs.source import Names, Nodes
from hangarfs.fs.view import (
    COMMIT_FILE,
    META_DIR,
    METADATA_DIR,
    SCHEMA_FILE,
    AllRefsView,
    CommitView,
    InfoView,
    MountSource,
    Node,
)

WATCH_INTERVAL = 0.25  # how often the head of a followed branch is read
Clock = Callable[[], float]


def _noop() -> None:
    pass


@dataclass(frozen=True)
class Move:
    """What a move of a view changed, as mount paths, and how to make the view show it."""

    description: str
    dirs: list[str] = field(default_factory=list)  # directories whose listing or attributes changed
    entries: list[str] = field(default_factory=list)  # names now meaning something else (or nothing)
    apply: Callable[[], None] = _noop


def _join(prefix: str, *parts: str) -> str:
    return (prefix.rstrip('/') + '/' + '/'.join(parts)) if parts else (prefix or '/')


def changed_paths(store: RepoStore, old: CommitView, new: CommitView, prefix: str = '/') -> Move:
    """The directories and names that differ between two commit views (paths under ``prefix``)."""
    dirs = {_join(prefix), _join(prefix, META_DIR)}
    entries = {_join(prefix, META_DIR, COMMIT_FILE), _join(prefix, META_DIR, 'mount.json')}
    if not old.commit or not new.commit:  # an empty branch got its first commit: everything is new
        names = {n for n, _ in (new.list_names('/') or ())} | {n for n, _ in (old.list_names('/') or ())}
        entries |= {_join(prefix, n) for n in names}
        return Move(f'{old.commit[:12]} -> {new.commit[:12]}', sorted(dirs), sorted(entries))
    diff = diff_snapshots(store.nodes, store.objects.snapshot(old.commit), store.objects.snapshot(new.commit))
    columns: dict[str, Any] = {}
    for view in (old, new):
        if view.checkout is not None:
            columns.update(view.checkout.columns.items())
    for name in diff.schema_changes.added | diff.schema_changes.deleted | diff.schema_changes.mutated:
        entries.add(_join(prefix, name))  # the column's directory: its whole subtree goes
        dirs.add(_join(prefix, name))
    for name, changes in diff.columns.items():
        if not changes or name not in columns:
            continue
        col = columns[name]
        ext = EXTENSIONS[col.column_type]
        dirs.add(_join(prefix, name))
        entries.add(_join(prefix, name, SCHEMA_FILE))  # it counts the samples
        for key in changes.added | changes.deleted | changes.mutated:
            if col.contains_subsamples:
                sample, sub = key
                dirs.add(_join(prefix, name, key_to_name(sample)))
                entries.add(_join(prefix, name, key_to_name(sample)))
                entries.add(_join(prefix, name, key_to_name(sample), key_to_name(sub) + ext))
            else:
                entries.add(_join(prefix, name, key_to_name(key) + ext))
    if diff.metadata:
        dirs.add(_join(prefix, META_DIR, METADATA_DIR))
        meta = diff.metadata
        entries |= {
            _join(prefix, META_DIR, METADATA_DIR, k) for k in meta.added | meta.deleted | meta.mutated
        }
    return Move(f'{old.commit[:12]} -> {new.commit[:12]}', sorted(dirs), sorted(entries))


class FollowedBranch(MountSource):
    """A branch shown as its head commit; it moves to a new head only through :meth:`poll`."""

    def __init__(
        self,
        store: RepoStore,
        branch: str,
        *,
        interval: float = WATCH_INTERVAL,
        clock: Clock = time.monotonic,
    ) -> None:
        head = store.refs.branch_head(branch)
        if head is None:
            raise RefNotFound(branch, 'branch')
        self.store = store
        self.branch = branch
        self.interval = interval
        self._clock = clock
        self._view = CommitView(store, head, ref=branch, branch=branch)
        self._checked = clock()

    @property
    def commit(self) -> str:
        return self._view.commit

    def poll(self, prefix: str = '/') -> Move | None:
        """If the head moved (read at most every ``interval``): the change, and how to switch to it."""
        now = self._clock()
        if now - self._checked < self.interval:
            return None
        self._checked = now
        head = self.store.refs.branch_head(self.branch)
        if head is None or head == self._view.commit:
            return None
        new = CommitView(self.store, head, ref=self.branch, branch=self.branch)
        move = changed_paths(self.store, self._view, new, prefix)

        def switch() -> None:
            self._view = new

        return Move(f'branch {self.branch}: {move.description}', move.dirs, move.entries, switch)

    def is_immutable(self) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        return {'ref': self.branch, 'commit': self._view.commit, 'follows_branch': True}

    def lookup(self, path: str) -> Node | None:
        return self._view.lookup(path)

    def list_names(self, path: str) -> Names | None:
        return self._view.list_names(path)

    def list_nodes(self, path: str) -> Nodes | None:
        return self._view.list_nodes(path)

    def uniform_file_size(self, path: str) -> int | None:
        return self._view.uniform_file_size(path)

    def pinned(self, path: str) -> tuple[MountSource, str]:
        return self._view, path


class FollowedRefs(AllRefsView):
    """``--all-refs`` whose branches move by :meth:`poll`, which also reports new and removed refs."""

    def __init__(
        self, store: RepoStore, *, interval: float = WATCH_INTERVAL, clock: Clock = time.monotonic
    ) -> None:
        super().__init__(store, interval=interval)
        self._clock = clock
        self._names_seen: dict[str, set[str]] = {g: set(self._names(g)) for g in self.GROUPS}
        self._checked = clock()

    def _branch_view(self, name: str) -> MountSource:
        return FollowedBranch(self.store, name, interval=self.interval, clock=self._clock)

    def poll(self) -> list[Move]:
        moves: list[Move] = []
        for (group, name), view in list(self._views.items()):
            if isinstance(view, FollowedBranch):
                move = view.poll(prefix=f'/{group}/{name}')
                if move is not None:
                    moves.append(move)
            elif (
                group == 'tags'
                and isinstance(view, CommitView)
                and self.store.refs.tag_commit(name) != view.commit
            ):
                gone = (group, name)

                def drop(key: tuple[str, str] = gone) -> None:
                    self._views.pop(key, None)

                moves.append(Move(f'tag {name} moved', [f'/{group}'], [f'/{group}/{name}'], drop))
        now = self._clock()
        if now - self._checked >= self.interval:
            self._checked = now
            for group in self.GROUPS:
                names = set(self._names(group))
                changed = names ^ self._names_seen[group]
                if changed:
                    self._names_seen[group] = names
                    entries = [f'/{group}/{n}' for n in sorted(changed)]
                    moves.append(Move(f'{group}: {len(changed)} added or removed', [f'/{group}'], entries))
        return moves

    def pinned(self, path: str) -> tuple[MountSource, str]:
        _parts, view, rest = self._route(path)
        if isinstance(view, FollowedBranch):
            return view.pinned(rest)
        if view is not None:
            return view, rest
        return self, path

    def uniform_file_size(self, path: str) -> int | None:
        view, rest = self.pinned(path)
        return view.uniform_file_size(rest) if view is not self else None


def pinned(source: MountSource, path: str) -> tuple[MountSource, str]:
    """The immutable view that shows ``path`` now and the path within it (``source`` itself for a
    commit, or for a staging area, which is never pinned)."""
    inner = source.inner if isinstance(source, InfoView) else source
    if isinstance(inner, FollowedBranch | FollowedRefs):
        return inner.pinned(path)
    return source, path


def poll_moves(source: MountSource) -> list[Move]:
    """The moves of whatever in ``source`` follows a ref (none for a commit or the staging area)."""
    inner = source.inner if isinstance(source, InfoView) else source
    if isinstance(inner, FollowedBranch):
        move = inner.poll()
        return [move] if move is not None else []
    if isinstance(inner, FollowedRefs):
        return inner.poll()
    return []
