"""Walking the commit graph: ancestors, ordering for the log, ancestry tests.

Functions take a ``parents_of(commit) -> tuple[str, ...]`` callable, so they know nothing of storage.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator

ParentsOf = Callable[[str], tuple[str, ...]]
TimeOf = Callable[[str], int]


def iter_ancestors(parents_of: ParentsOf, heads: Iterable[str]) -> Iterator[str]:
    """Every commit reachable from ``heads`` (themselves included), each once, breadth first."""
    seen: set[str] = set()
    queue = [h for h in heads if h]
    while queue:
        nxt: list[str] = []
        for c in queue:
            if c in seen:
                continue
            seen.add(c)
            yield c
            nxt.extend(p for p in parents_of(c) if p not in seen)
        queue = nxt


def is_ancestor(parents_of: ParentsOf, ancestor: str, descendant: str) -> bool:
    """True when ``ancestor`` is ``descendant`` or one of its ancestors."""
    if not ancestor or not descendant:
        return not ancestor
    return any(c == ancestor for c in iter_ancestors(parents_of, [descendant]))


def topo_order(parents_of: ParentsOf, time_of: TimeOf, heads: Iterable[str]) -> list[str]:
    """Commits reachable from ``heads``, children before parents, newest first among the ready ones."""
    commits = list(iter_ancestors(parents_of, heads))
    children_left = dict.fromkeys(commits, 0)
    for c in commits:
        for p in parents_of(c):
            if p in children_left:
                children_left[p] += 1
    ready = [(-time_of(c), c) for c in commits if children_left[c] == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        _, c = heapq.heappop(ready)
        out.append(c)
        for p in parents_of(c):
            if p in children_left:
                children_left[p] -= 1
                if children_left[p] == 0:
                    heapq.heappush(ready, (-time_of(p), p))
    return out
