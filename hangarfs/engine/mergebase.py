"""Merge bases: the lowest common ancestors of two sets of commits, found by walking the graph.

Commit times play no part (clocks differ between machines and can go backwards). A *common ancestor*
is a commit reachable from both sides (each side's heads included); the *merge bases* are the common
ancestors that are not ancestors of another common ancestor. A plain fork has one; a criss-cross
history (each side merged the other) has two or more, which ``merge.py`` merges recursively.

Functions take a ``parents_of(commit) -> tuple[str, ...]`` callable and know nothing of storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hangarfs.engine.history import ParentsOf, iter_ancestors


def cached_parents(parents_of: ParentsOf) -> ParentsOf:
    """``parents_of`` remembering its answers (one walk reads each commit record once)."""
    memo: dict[str, tuple[str, ...]] = {}

    def lookup(commit: str) -> tuple[str, ...]:
        found = memo.get(commit)
        if found is None:
            found = memo[commit] = parents_of(commit)
        return found

    return lookup


def common_frontier(parents_of: ParentsOf, ours: Iterable[str], theirs: Iterable[str]) -> list[str]:
    """The first commits reachable from ``ours`` met on each path walking down from ``theirs``.

    Every merge base is among them; some of them may be ancestors of others.
    """
    ours_ancestors = set(iter_ancestors(parents_of, ours))
    found: list[str] = []
    seen: set[str] = set()
    stack = [c for c in theirs if c]
    while stack:
        c = stack.pop()
        if c in seen:
            continue
        seen.add(c)
        if c in ours_ancestors:
            found.append(c)
            continue  # everything below is a common ancestor too, but not a lowest one
        stack.extend(p for p in parents_of(c) if p not in seen)
    return found


def merge_bases(parents_of: ParentsOf, ours: Iterable[str], theirs: Iterable[str]) -> list[str]:
    """The lowest common ancestors of the commits ``ours`` and ``theirs``, sorted by digest.

    Empty when the histories share nothing. If one side's head is an ancestor of the other's, it is
    the only merge base (so ``[ours_head]`` means a fast-forward and ``[theirs_head]`` nothing to do).
    """
    candidates = common_frontier(parents_of, ours, theirs)
    if len(candidates) <= 1:
        return candidates
    wanted = set(candidates)
    redundant: set[str] = set()
    for c in candidates:
        if c in redundant:
            continue
        for anc in iter_ancestors(parents_of, parents_of(c)):
            if anc in wanted:
                redundant.add(anc)
    return sorted(c for c in candidates if c not in redundant)


def make_parents_of(record_of: Callable[[str], object]) -> ParentsOf:
    """A cached ``parents_of`` over a function returning commit records (anything with ``.parents``)."""
    return cached_parents(lambda c: tuple(record_of(c).parents))  # type: ignore[attr-defined]
