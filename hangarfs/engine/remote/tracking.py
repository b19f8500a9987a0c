"""Remote-tracking branches (``origin/master``): where a remote's branches were at the last fetch or
push. They live in the ``remote:`` namespace of the refs table (see ``engine/refs.py`` for why)."""

from __future__ import annotations

from collections.abc import Mapping

from hangarfs.engine.lmdbenv import Txn
from hangarfs.engine.refs import remote_branch_ref
from hangarfs.engine.store import RepoStore


def tracking_name(remote: str, branch: str) -> str:
    return f'{remote}/{branch}'


def tracking_heads(store: RepoStore, remote: str) -> dict[str, str]:
    """Branch -> commit of every remote-tracking branch of ``remote``."""
    prefix = f'{remote}/'
    return {n[len(prefix) :]: c for n, c in store.refs.remote_branches().items() if n.startswith(prefix)}


def set_tracking(store: RepoStore, remote: str, heads: Mapping[str, str], *, txn: Txn | None = None) -> None:
    """Point ``remote/BRANCH`` at each given commit (in ``txn``, or a transaction of its own)."""
    if txn is None:
        with store.history.write() as own:
            set_tracking(store, remote, heads, txn=own)
        return
    for branch, commit in heads.items():
        ref = remote_branch_ref(tracking_name(remote, branch))
        store.refs.set_if_equals(ref, store.refs.get(ref, txn=txn), commit, txn=txn)
