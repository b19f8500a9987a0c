"""Diffing two search trees (``tree``): walk both together, skip every pair of equal subtrees.

Subtrees are compared by digest before they are read, so the cost follows the size of the difference,
not of the trees.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from hangarfs.engine.records import EMPTY_ROOT
from hangarfs.engine.tree import Leaf, NodeSource


def tree_diff(src: NodeSource, a: bytes, b: bytes) -> Iterator[tuple[bytes, bytes | None, bytes | None]]:
    """Yield (key, value in a or None, value in b or None) for every key whose value differs.

    Subtrees with equal digests are skipped without being read, so the cost follows the difference.
    """
    if a == b:
        return
    # items: (is_node, level, key-or-digest, value) ; nodes are expanded lazily
    qa: deque[tuple[bool, int, bytes, bytes]] = deque()
    qb: deque[tuple[bool, int, bytes, bytes]] = deque()
    if a != EMPTY_ROOT:
        qa.append((True, src.node(a).level, a, b''))
    if b != EMPTY_ROOT:
        qb.append((True, src.node(b).level, b, b''))

    def expand(q: deque[tuple[bool, int, bytes, bytes]]) -> None:
        _, _, d, _ = q.popleft()
        node = src.node(d)
        if isinstance(node, Leaf):
            q.extendleft(reversed([(False, -1, k, v) for k, v in zip(node.keys, node.values)]))
        else:
            q.extendleft(reversed([(True, node.level - 1, c, b'') for c in node.children]))

    while qa and qb:
        fa, fb = qa[0], qb[0]
        if fa[0] and fb[0]:
            if fa[2] == fb[2]:
                qa.popleft()
                qb.popleft()
            elif fa[1] >= fb[1]:
                expand(qa)
            else:
                expand(qb)
        elif fa[0]:
            expand(qa)
        elif fb[0]:
            expand(qb)
        else:
            ka, kb = fa[2], fb[2]
            if ka == kb:
                qa.popleft()
                qb.popleft()
                if fa[3] != fb[3]:
                    yield ka, fa[3], fb[3]
            elif ka < kb:
                qa.popleft()
                yield ka, fa[3], None
            else:
                qb.popleft()
                yield kb, None, fb[3]
    while qa:
        if qa[0][0]:
            expand(qa)
        else:
            _, _, k, v = qa.popleft()
            yield k, v, None
    while qb:
        if qb[0][0]:
            expand(qb)
        else:
            _, _, k, v = qb.popleft()
            yield k, None, v
