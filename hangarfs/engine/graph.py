"""The commit graph as ASCII art, in the manner of ``git log --graph --oneline``.

```
*   5f0c2a91d3e4 (master) merge relabel
|\\
| * 9ab1c0ffee12 (relabel) fix labels 3 and 7
* | 77d2e0a1b2c3 add 10 images
|/
* 0c1d2e3f4a5b (tag: v1.0) ingest
```

Each commit takes a lane; a row shows ``*`` in the commit's lane and ``|`` in every other open lane.
Below a commit its lane splits towards its parents (``\\``), and lanes waiting for the same commit
join (``/``), one column per row. Pure: takes the commits in order, ``parents_of`` and a label function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hangarfs.engine.history import ParentsOf
from hangarfs.engine.records import CommitRecord


def _transition_rows(edges: list[tuple[int, int]], width: int) -> list[str]:
    """Rows drawing lanes moving from their old columns to their new ones, one column per row."""
    pos = [a for a, _ in edges]
    rows: list[str] = []
    while any(p != b for p, (_, b) in zip(pos, edges)):
        cells = [' '] * (2 * width)
        for i, (_, target) in enumerate(edges):
            cur = pos[i]
            step = (target > cur) - (target < cur)
            if step == 0:
                char, at = '|', 2 * cur
            elif step > 0:
                char, at = '\\', 2 * cur + 1
            else:
                char, at = '/', 2 * cur - 1
            cells[at] = char if cells[at] in (' ', char) else 'X'
            pos[i] = cur + step
        rows.append(''.join(cells).rstrip())
    return rows


def render_graph(order: Sequence[str], parents_of: ParentsOf, label: Callable[[str], str]) -> list[str]:
    """Lines of the graph of ``order`` (every commit after all its children, as ``topo_order`` gives)."""
    shown = set(order)
    lanes: list[str] = []
    lines: list[str] = []
    for commit in order:
        if commit not in lanes:
            lanes.append(commit)
        idx = lanes.index(commit)
        parents = [p for p in parents_of(commit) if p in shown]
        new: list[str] = []
        for i, lane in enumerate(lanes):
            for p in parents if i == idx else [lane]:
                if p not in new:
                    new.append(p)
        edges = [(i, new.index(p)) for i, lane in enumerate(lanes) for p in (parents if i == idx else [lane])]
        width = max(len(lanes), len(new))
        cells = ''.join(('*' if i == idx else '|') + ' ' for i in range(len(lanes)))
        lines.append(cells + '  ' * (width - len(lanes)) + label(commit))
        lines.extend(_transition_rows(edges, width))
        lanes = new
    return lines


def decoration(
    commit: str, branch_heads: Mapping[str, list[str]], tag_heads: Mapping[str, list[str]], head: str = ''
) -> str:
    """The names of a commit as git prints them: ``(HEAD -> master, dev, tag: v1.0)`` ('' if none)."""
    branches = sorted(branch_heads.get(commit, []))
    names = [f'HEAD -> {b}' for b in branches if b == head]
    names += [b for b in branches if b != head]
    names += [f'tag: {t}' for t in sorted(tag_heads.get(commit, []))]
    return f'({", ".join(names)})' if names else ''


def commit_label(commit: str, record: CommitRecord, decor: str, extra: str = '') -> str:
    """One commit's line: short digest, anything extra (time, author), names, the message's first line."""
    first = record.message.splitlines()[0] if record.message else ''
    return ' '.join(part for part in (commit[:12], extra, decor, first) if part)


def log_lines(
    order: Sequence[str],
    records: Mapping[str, CommitRecord],
    branch_heads: Mapping[str, list[str]],
    tag_heads: Mapping[str, list[str]],
    *,
    head: str = '',
    graph: bool = False,
    extra: Callable[[CommitRecord], str] | None = None,
) -> list[str]:
    """``git log --oneline`` (``* `` before each line) or, with ``graph``, ``git log --graph --oneline``;
    ``head`` is the branch HEAD names (the writer's branch)."""

    def label(c: str) -> str:
        more = extra(records[c]) if extra is not None else ''
        return commit_label(c, records[c], decoration(c, branch_heads, tag_heads, head), more)

    if graph:
        return render_graph(order, lambda c: records[c].parents, label)
    return [f'* {label(c)}' for c in order]


def log_graph(
    order: Sequence[str],
    records: Mapping[str, CommitRecord],
    branch_heads: Mapping[str, list[str]],
    tag_heads: Mapping[str, list[str]],
) -> list[str]:
    """The graph with one line per commit: short digest, branch and tag names, first line of the message."""
    return log_lines(order, records, branch_heads, tag_heads, graph=True)
