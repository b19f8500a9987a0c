"""Relative refs, as git writes them: ``REF~N`` (N first parents back), ``REF^`` / ``REF^N`` (the Nth
parent; ``^0`` is the commit itself), in any sequence (``master~2^2~1``), and ``HEAD``: the head of the
writer's branch (the branch the staging area is on), unless a branch or tag is itself named HEAD.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from hangarfs.errors import RefNotFound

if TYPE_CHECKING:
    from hangarfs.engine.refs import Refs, ResolvedRef

HEAD = 'HEAD'
_REVISION = re.compile(r'([^~^]+)((?:[~^][0-9]*)*)')
_STEP = re.compile(r'([~^])([0-9]*)')


def is_revision(text: str) -> bool:
    """True for text that only this module can resolve (HEAD, or a ref followed by ~ or ^ steps)."""
    return text == HEAD or '~' in text or '^' in text


def resolve_revision(refs: Refs, text: str) -> ResolvedRef:
    from hangarfs.engine.refs import ResolvedRef

    match = _REVISION.fullmatch(text)
    if match is None:
        raise RefNotFound(text, message=f'{text!r} is no ref: write REF, REF~N or REF^N (N a number)')
    base, steps = match.groups()
    resolved = refs.head() if base == HEAD else refs.resolve(base)
    if not steps:
        return resolved
    commit = resolved.commit
    for op, digits in _STEP.findall(steps):
        n = int(digits) if digits else 1
        if op == '~':
            for _ in range(n):
                commit = _parent(refs, text, commit, 1)
        elif n:
            commit = _parent(refs, text, commit, n)
    return ResolvedRef(commit)


def _parent(refs: Refs, text: str, commit: str, n: int) -> str:
    if not commit:
        raise RefNotFound(text, message=f'{text!r}: the branch has no commits yet')
    parents = refs.parents(commit)
    if len(parents) < n:
        which = 'no parent' if not parents else f'{len(parents)} parent(s), not {n}'
        raise RefNotFound(text, message=f'{text!r}: commit {commit[:12]} has {which}')
    return parents[n - 1]
