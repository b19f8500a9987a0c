"""``repo.log()`` and ``co.log()``: the history of a commit, printed or returned as Hangar 0.5 returns it.

``return_contents=True`` gives Hangar's dictionary:

- ``head``: the commit the log starts at;
- ``order``: every ancestor, children before parents, newest first among those ready;
- ``ancestors``: ``{commit: [parents]}`` (a merge lists its first parent, then the merged one; the root
  lists ``['']``, as in Hangar);
- ``specs``: ``{commit: {'commit_message', 'commit_time' (seconds, float), 'commit_user',
  'commit_email'}}``;
- ``branch_heads``: ``{commit: [branch names]}`` for the commits in ``order`` that a branch points at;
- and, beyond Hangar, ``tag_heads``: ``{commit: [tag names]}`` in the same way, and ``properties``:
  ``{commit: {key: value}}``, each commit's typed key/value map (StockRoom's tags).
"""

from __future__ import annotations

import time
from typing import Any

from hangarfs.engine.graph import log_lines
from hangarfs.engine.history import topo_order
from hangarfs.engine.records import CommitRecord
from hangarfs.engine.store import RepoStore
from hangarfs.engine.validate import check_flag


def show_log(
    store: RepoStore,
    head: str,
    *,
    return_contents: bool = False,
    show_time: bool = False,
    show_user: bool = False,
    graph: bool = False,
    max_count: int | None = None,
    writer_branch: str = '',
) -> dict[str, Any] | None:
    """Print the history of ``head`` (newest first), or return it (see the module docstring).

    Printed: one line per commit as ``git log --oneline`` prints it (``HEAD ->`` marks
    ``writer_branch``), or the graph as ``git log --graph --oneline`` draws it; ``max_count`` keeps
    only the newest commits.
    """
    for name, flag in (
        ('return_contents', return_contents),
        ('show_time', show_time),
        ('show_user', show_user),
        ('graph', graph),
    ):
        check_flag(f'log({name}=...)', flag)

    def parents(c: str) -> tuple[str, ...]:
        return store.objects.commit(c).parents

    def time_ns(c: str) -> int:
        return store.objects.commit(c).time_ns

    order = topo_order(parents, time_ns, [head]) if head else []
    if max_count is not None:
        order = order[: max(0, max_count)]
    records = {c: store.objects.commit(c) for c in order}
    in_log = set(order)
    branch_heads: dict[str, list[str]] = {}
    for b, h in sorted(store.refs.list('branch').items()):
        if h in in_log:
            branch_heads.setdefault(h, []).append(b)
    tag_heads: dict[str, list[str]] = {}
    for t in sorted(store.refs.list('tag')):
        c = store.refs.tag_commit(t)
        if c in in_log:
            tag_heads.setdefault(c, []).append(t)
    if return_contents:
        return {
            'head': head,
            'order': order,
            'ancestors': {c: list(r.parents) or [''] for c, r in records.items()},
            'specs': {
                c: {
                    'commit_message': r.message,
                    'commit_time': r.time_ns / 1e9,
                    'commit_user': r.author,
                    'commit_email': r.email,
                }
                for c, r in records.items()
            },
            'branch_heads': branch_heads,
            'tag_heads': tag_heads,
            'properties': {c: dict(r.properties) for c, r in records.items()},
        }

    def extra(r: CommitRecord) -> str:
        parts = [time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(r.time))] if show_time else []
        return ' '.join([*parts, f'<{r.author} {r.email}>'] if show_user else parts)

    lines = log_lines(order, records, branch_heads, tag_heads, head=writer_branch, graph=graph, extra=extra)
    print('\n'.join(lines) if lines else '(no commits yet)')
    return None
