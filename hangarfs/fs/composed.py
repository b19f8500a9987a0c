"""Views composed of commit views, as ratarmount composes sub-volumes.

- :class:`BranchView` follows a branch: it re-reads the head at most every ``interval`` seconds and
  serves each lookup and each whole listing from one commit;
- :class:`AllRefsView` composes ``branches/NAME``, ``tags/NAME`` and ``commits/DIGEST`` from those,
  each built only when first entered;
- :class:`InfoView` adds ``.hangarfs/mount.json`` (who serves the mount) to any view, and what ``df``
  shows of a read-only mount (the repository's size, ``usage.py``).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from hangarfs.engine.store import RepoStore
from hangarfs.errors import AmbiguousRef, RefNotFound
from hangarfs.fs.commit_view import META_DIR, CommitView
from hangarfs.fs.nodes import Node, content_node, dir_node, split_path
from hangarfs.fs.source import MountSource, Names, Nodes


class BranchView(MountSource):
    """Follows a branch: a new commit shows within ``interval`` seconds, never mixed with the old one.

    Each lookup and each whole listing is served from one commit. Nodes returned earlier keep reading
    the commit they came from, so a file opened before the branch moved keeps its version.
    """

    def __init__(self, store: RepoStore, branch: str, *, interval: float = 0.25) -> None:
        self.store = store
        self.branch = branch
        self.interval = interval
        head = store.refs.branch_head(branch)
        if head is None:
            raise RefNotFound(branch, 'branch')
        self._view = CommitView(store, head, ref=branch, branch=branch)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def current(self) -> CommitView:
        now = time.monotonic()
        if now - self._checked < self.interval:
            return self._view
        with self._lock:
            if now - self._checked >= self.interval:
                head = self.store.refs.branch_head(self.branch)
                if head is not None and head != self._view.commit:
                    self._view = CommitView(self.store, head, ref=self.branch, branch=self.branch)
                self._checked = time.monotonic()
            return self._view

    def is_immutable(self) -> bool:
        return False

    def refresh(self) -> None:
        self.current()

    def describe(self) -> dict[str, Any]:
        return {'ref': self.branch, 'commit': self._view.commit, 'follows_branch': True}

    def lookup(self, path: str) -> Node | None:
        return self.current().lookup(path)

    def list_names(self, path: str) -> Names | None:
        return self.current().list_names(path)

    def list_nodes(self, path: str) -> Nodes | None:
        return self.current().list_nodes(path)


class AllRefsView(MountSource):
    """``branches/NAME/...``, ``tags/NAME/...``, ``commits/DIGEST/...``: each view built when entered."""

    GROUPS = ('branches', 'tags', 'commits')

    def __init__(self, store: RepoStore, *, interval: float = 0.25) -> None:
        self.store = store
        self.interval = interval
        self._views: dict[tuple[str, str], MountSource] = {}
        self._lock = threading.Lock()
        self.mtime_ns = time.time_ns()

    def is_immutable(self) -> bool:
        return False

    def refresh(self) -> None:
        for view in list(self._views.values()):
            view.refresh()

    def describe(self) -> dict[str, Any]:
        return {'ref': '--all-refs'}

    def _names(self, group: str) -> list[str]:
        if group == 'branches':
            return sorted(self.store.refs.list('branch'))
        if group == 'tags':
            return sorted(self.store.refs.list('tag'))
        return list(self.store.objects.iter_commits())

    def _view(self, group: str, name: str) -> MountSource | None:
        key = (group, name)
        view = self._views.get(key)
        if view is not None:
            return view
        try:
            if group == 'branches':
                if self.store.refs.branch_head(name) is None:
                    return None
                view = self._branch_view(name)
            elif group == 'tags':
                commit = self.store.refs.tag_commit(name)
                if commit is None:
                    return None
                view = CommitView(self.store, commit, ref=name)
            else:
                commit = self._commit_named(name)
                if commit is None:
                    return None
                view = CommitView(self.store, commit)
        except RefNotFound:
            return None
        with self._lock:
            return self._views.setdefault(key, view)

    def _branch_view(self, name: str) -> MountSource:
        """The view of ``branches/NAME`` (the low-level adapter's follows moves by invalidation)."""
        return BranchView(self.store, name, interval=self.interval)

    def _commit_named(self, name: str) -> str | None:
        """The commit ``commits/NAME`` stands for: a full digest or a unique prefix (as ``--ref`` takes)."""
        if len(name) == 64:
            return name if self.store.objects.has_commit(name) else None
        try:
            return self.store.refs.resolve_commit(name)
        except (RefNotFound, AmbiguousRef):
            return None

    def _route(self, path: str) -> tuple[list[str], MountSource | None, str]:
        parts = split_path(path)
        if len(parts) < 2 or parts[0] not in self.GROUPS:
            return parts, None, ''
        view = self._view(parts[0], parts[1])
        if view is not None and parts[0] == 'branches' and self.store.refs.branch_head(parts[1]) is None:
            with self._lock:  # the branch was deleted
                self._views.pop((parts[0], parts[1]), None)
            view = None
        return parts, view, '/' + '/'.join(parts[2:])

    def lookup(self, path: str) -> Node | None:
        parts, view, rest = self._route(path)
        if not parts:
            return dir_node(self.mtime_ns, entries=3)
        if len(parts) == 1:
            return dir_node(self.mtime_ns) if parts[0] in self.GROUPS else None
        return view.lookup(rest) if view is not None else None

    def list_names(self, path: str) -> Names | None:
        parts, view, rest = self._route(path)
        if len(parts) <= 1:
            nodes = self.list_nodes(path)
            return None if nodes is None else ((name, True) for name, _ in nodes)
        return view.list_names(rest) if view is not None else None

    def list_nodes(self, path: str) -> Nodes | None:
        parts, view, rest = self._route(path)
        if not parts:
            return iter([(g, dir_node(self.mtime_ns)) for g in self.GROUPS])
        if len(parts) == 1:
            if parts[0] not in self.GROUPS:
                return None
            group_dir = dir_node(self.mtime_ns)
            return ((name, group_dir) for name in self._names(parts[0]))
        return view.list_nodes(rest) if view is not None else None


class InfoView(MountSource):
    """Adds ``/.hangarfs/mount.json`` (who serves this mount, from where) to another view."""

    INFO_FILE = 'mount.json'

    def __init__(
        self,
        inner: MountSource,
        info: dict[str, Any],
        *,
        usage: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        self.inner = inner
        self.info = info
        self._usage = usage  # what df shows (the repository's size), when the inner view does not know
        self._mtime = time.time_ns()

    def _info_node(self) -> Node:
        info = {**self.info, **self.inner.describe()}
        return content_node((json.dumps(info, indent=2) + '\n').encode(), self._mtime)

    def is_immutable(self) -> bool:
        return self.inner.is_immutable()

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def refresh(self) -> None:
        self.inner.refresh()

    def lookup(self, path: str) -> Node | None:
        parts = split_path(path)
        if parts == [META_DIR, self.INFO_FILE]:
            return self._info_node()
        node = self.inner.lookup(path)
        if node is None and parts == [META_DIR]:
            return dir_node(self._mtime)
        return node

    def list_names(self, path: str) -> Names | None:
        parts = split_path(path)
        if parts in ([], [META_DIR]):  # small directories: their nodes say which entries are directories
            nodes = self.list_nodes(path)
            return None if nodes is None else ((name, node.is_dir) for name, node in nodes)
        return self.inner.list_names(path)

    def list_nodes(self, path: str) -> Nodes | None:
        parts = split_path(path)
        inner = self.inner.list_nodes(path)
        if parts == [META_DIR]:
            return itertools.chain(inner or iter(()), [(self.INFO_FILE, self._info_node())])
        if not parts and inner is not None and self.inner.lookup('/' + META_DIR) is None:
            return itertools.chain([(META_DIR, dir_node(self._mtime))], inner)
        return inner

    def read(self, node: Node, size: int, offset: int) -> bytes:
        return self.inner.read(node, size, offset)

    def uniform_file_size(self, path: str) -> int | None:
        return self.inner.uniform_file_size(path)

    def usage(self) -> tuple[int, int] | None:
        return self._usage() if self._usage is not None else self.inner.usage()

    def tracks_open_files(self) -> bool:
        return self.inner.tracks_open_files()

    def open_file(self, node: Node) -> Any:
        return self.inner.open_file(node)

    def release_file(self, token: Any) -> None:
        self.inner.release_file(token)
