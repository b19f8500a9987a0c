"""``Repository(path).clone(user, email, url)``: a new repository holding a remote's history.

The clone is made as ``init`` + ``remote add origin URL`` + a fetch of every branch (history,
schemas and trees; no sample data: every sample gets a placeholder location naming the remote), then
the remote's default branch (``master`` when it has one) becomes the local branch of the same name.
Until the fetch has committed, the repository's config records ``clone_from``: running the same clone
again resumes it (the fetch is one transaction, so it either happened or did not), and anything else
sees an empty repository with the remote configured, from which ``fetch`` continues just as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hangarfs.backends.remote_repo import open_remote
from hangarfs.engine.refs import branch_ref
from hangarfs.engine.remote.config import RemoteSettings, add_remote, check_options, get_remote, normalize_url
from hangarfs.engine.remote.fetch import FetchReport, fetch
from hangarfs.engine.remote.progress import NO_PROGRESS, Progress
from hangarfs.errors import RepositoryExists
from hangarfs.errors_remote import RemoteNotFound

if TYPE_CHECKING:
    from hangarfs.engine.repository import Repository

CLONE_MARK = 'clone_from'
DEFAULT_BRANCH = 'master'


def clone_repository(
    repo: Repository,
    user_name: str,
    user_email: str,
    url: str,
    *,
    remove_old: bool = False,
    name: str = 'origin',
    options: Mapping[str, Any] | None = None,
    progress: Progress = NO_PROGRESS,
) -> tuple[str, FetchReport]:
    """Clone ``url`` into ``repo`` (see the module docstring); returns the local branch and what the
    fetch did."""
    target = normalize_url(url)
    settings = RemoteSettings(name, target, check_options(options or {}))
    # the remote first: a wrong URL, missing credentials or a dead endpoint leave no repository behind
    with open_remote(target, retry=settings.retry_policy(), **settings.store_options()) as remote:
        remote.read_refs()
    resuming = False
    if repo.initialized and not remove_old:
        store = repo.store
        if store.config_get(CLONE_MARK) != target:
            raise RepositoryExists(repo.path)
        resuming = True
    if not resuming:
        repo.init(user_name, user_email, remove_old=remove_old)
        store = repo.store
        add_remote(store, name, url, options)
        store.config_set(CLONE_MARK, target)
    else:
        try:
            get_remote(store, name)
        except RemoteNotFound:
            add_remote(store, name, url, options)
    report = fetch(store, name, None, progress=progress)
    branches = {b: new for b, (_, new) in report.branches.items()}
    default = DEFAULT_BRANCH if DEFAULT_BRANCH in branches or not branches else sorted(branches)[0]
    with store.history.write() as txn:
        if default in branches:
            ref = branch_ref(default)
            store.refs.set_if_equals(ref, store.refs.get(ref, txn=txn), branches[default], txn=txn)
        store.history_table('config').delete(CLONE_MARK.encode(), txn=txn)
    return default, report
