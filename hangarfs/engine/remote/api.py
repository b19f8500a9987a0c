"""``repo.remote``: Hangar 0.5's ``Remotes``, on object storage instead of a hangar server.

Same names, arguments and return values as Hangar's (``add`` -> ``RemoteInfo``, ``fetch`` -> the
remote-tracking branch ``'origin/NAME'``, ``fetch_data`` -> the commits whose data was fetched,
``push`` -> the branch name). What each call did in detail is kept in ``last_report`` (a
``PushReport``, ``FetchReport`` or ``FetchDataReport``), which the CLI prints.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hangarfs.engine.history import iter_ancestors
from hangarfs.engine.remote import config
from hangarfs.engine.remote.fetch import fetch
from hangarfs.engine.remote.fetch_data import fetch_wanted, select_columns, select_samples
from hangarfs.engine.remote.progress import NO_PROGRESS, Progress
from hangarfs.engine.remote.push import push
from hangarfs.engine.remote.tracking import tracking_name
from hangarfs.errors import RefNotFound

if TYPE_CHECKING:
    from hangarfs.engine.repository import Repository

RemoteInfo = config.RemoteInfo


class Remotes:
    """The remotes of a repository, and the operations on them (``repo.remote``)."""

    def __init__(self, repo: Repository, progress: Progress = NO_PROGRESS) -> None:
        self._repo = repo
        self.progress = progress
        self.last_report: Any = None

    @property
    def _store(self) -> Any:
        return self._repo.store

    # ------------------------------------------------------------------ configuration

    def add(self, name: str, address: str, **options: Any) -> RemoteInfo:
        """Record the remote ``name`` at ``address``: ``s3://BUCKET/PREFIX``, a directory, ``file://``
        or any fsspec URL. ``options``: ``endpoint_url``, ``region``, ``profile``, ``anonymous``,
        ``unsafe_single_writer``, ``retries``, ``connect_timeout``, ``read_timeout`` (credentials come
        from the environment or ``~/.aws``, never from the repository). Nothing is contacted."""
        return config.add_remote(self._store, name, address, options)

    def remove(self, name: str) -> RemoteInfo:
        """Forget the remote ``name`` and its remote-tracking branches (the data fetched stays)."""
        return config.remove_remote(self._store, name)

    def list_all(self) -> list[RemoteInfo]:
        return [r.info for r in config.list_remotes(self._store)]

    def ping(self, name: str) -> float:
        """Seconds to open the remote and read its refs (RemoteUnreachable, RemoteNotARepository ...)."""
        start = time.perf_counter()
        with config.connect(self._store, name) as remote:
            remote.read_refs()
        return time.perf_counter() - start

    # ------------------------------------------------------------------ history

    def fetch(self, remote: str, branch: str) -> str:
        """Fetch the history of ``branch`` (no sample data); returns ``'REMOTE/BRANCH'``, the
        remote-tracking branch that now names the remote's head (merge it to bring it in)."""
        self.last_report = fetch(self._store, remote, [branch], progress=self.progress)
        return tracking_name(remote, branch)

    def fetch_all(self, remote: str) -> list[str]:
        """Fetch every branch of ``remote``; returns the remote-tracking branches."""
        self.last_report = fetch(self._store, remote, None, progress=self.progress)
        return list(self.last_report.tracking_branches)

    def push(
        self, remote: str, branch: str, *, force: bool = False, username: str = '', password: str = ''
    ) -> str:
        """Send ``branch`` and what it needs that the remote lacks, then move the remote branch (a
        fast-forward, unless ``force``). ``username``/``password`` are Hangar's server login and are
        not used: object stores authenticate with their own credentials."""
        self.last_report = push(self._store, remote, branch, force=force, progress=self.progress)
        return branch

    # ------------------------------------------------------------------ data

    def _commit(self, branch: str | None, commit: str | None) -> str:
        if branch and commit:
            raise ValueError('give branch= or commit=, not both')
        if not branch and not commit:
            raise ValueError('give branch= (a branch or remote-tracking branch) or commit= (a commit or tag)')
        store = self._store
        if branch:
            head = store.refs.branch_head(branch)
            if head is None:
                raise RefNotFound(branch, 'branch')
            if not head:
                raise RefNotFound(branch, message=f'branch {branch!r} has no commits yet')
            return str(head)
        return str(store.refs.resolve(str(commit)).commit)

    def fetch_data(
        self,
        remote: str,
        branch: str | None = None,
        commit: str | None = None,
        *,
        column_names: Sequence[str] | None = None,
        max_num_bytes: int | None = None,
        retrieve_all_history: bool = False,
    ) -> list[str]:
        """Fetch the sample data of a commit (``branch`` head or ``commit``), of ``column_names``
        only if given, up to ``max_num_bytes`` if given, of every ancestor too with
        ``retrieve_all_history``. Returns the commits whose data was fetched."""
        head = self._commit(branch, commit)
        if retrieve_all_history and max_num_bytes is not None:
            raise ValueError('max_num_bytes and retrieve_all_history=True do not go together (as in Hangar)')
        if isinstance(column_names, str):
            column_names = [column_names]
        store = self._store
        commits = list(iter_ancestors(store.refs.parents, [head])) if retrieve_all_history else [head]
        wanted = select_columns(store, commits, column_names)
        self.last_report = fetch_wanted(
            store, remote, wanted, commits, max_num_bytes=max_num_bytes, progress=self.progress
        )
        return commits

    def fetch_data_sample(
        self,
        remote: str,
        column: str,
        samples: Any,
        branch: str | None = None,
        commit: str | None = None,
    ) -> str:
        """Fetch the data of some samples of ``column``: a key, or a list of keys; in a nested column
        also ``(key, subkey)``, ``(key, ...)`` or ``(key,)``. Returns the commit."""
        head = self._commit(branch, commit)
        if not isinstance(samples, (list, tuple)):  # as Hangar: one key, or a sequence of them
            samples = [samples]
        wanted = select_samples(self._store, head, column, samples)
        self.last_report = fetch_wanted(self._store, remote, wanted, [head], progress=self.progress)
        return head

    def __repr__(self) -> str:
        rows = [f'  {r.name}: {r.address}' for r in self.list_all()] or ['  (none)']
        return '<Remotes\n' + '\n'.join(rows) + '>'
