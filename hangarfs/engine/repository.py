"""``Repository``: the entry point, named and shaped as in Hangar 0.5."""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from hangarfs.backends import backend_code, backend_name
from hangarfs.engine import tags as tag_refs
from hangarfs.engine.checkout import ReaderCheckout
from hangarfs.engine.diff import DiffResult, diff_snapshots
from hangarfs.engine.history import is_ancestor
from hangarfs.engine.keys import check_name
from hangarfs.engine.lmdbenv import ENVIRONMENTS, EnvSpec
from hangarfs.engine.lock import WriterLock
from hangarfs.engine.log import show_log
from hangarfs.engine.merge import merge_with_writer_lock
from hangarfs.engine.refs import branch_ref, is_remote_branch_name, remote_branch_ref
from hangarfs.engine.staging import StagingArea
from hangarfs.engine.store import (
    FORMAT_FILE,
    FORMAT_TEXT,
    HISTORY_DBS,
    RepoStore,
    is_repository,
    store_dir,
)
from hangarfs.engine.summary import dir_size, format_bytes, format_summary, summarize
from hangarfs.engine.tables import Tables
from hangarfs.engine.tags import Tag
from hangarfs.engine.validate import check_flag
from hangarfs.engine.verify import VerifyReport, verify_store
from hangarfs.engine.writer_checkout import WriterCheckout
from hangarfs.errors import (
    BranchExists,
    BranchInUse,
    BranchNotMerged,
    IntegrityError,
    NoCommitsYet,
    RefNotFound,
    RepositoryExists,
    RepositoryNotFound,
    WriterLockHeld,
)
from hangarfs.version import __version__

if TYPE_CHECKING:
    from hangarfs.engine.remote.api import Remotes

DEFAULT_BRANCH = 'master'
FIRST_VERSION = '0.1.0'  # what made the repositories that do not record their version


class BranchHead(NamedTuple):
    name: str
    digest: str


class Repository:
    """A hangarfs repository at ``path`` (the store is the hidden ``path/.hangarfs``)."""

    def __init__(self, path: str | os.PathLike[str] = '.', exists: bool = True) -> None:
        self._path = os.path.abspath(os.fspath(path))
        self._store: RepoStore | None = None
        if is_repository(self._path):
            self._store = RepoStore(self._path)
        elif exists:
            warnings.warn(str(RepositoryNotFound(self._path)), UserWarning, stacklevel=2)

    # ------------------------------------------------------------------ basics

    @property
    def path(self) -> str:
        return self._path

    @property
    def initialized(self) -> bool:
        return self._store is not None

    def close(self) -> None:
        """Drop this object's handles; they are released once no open checkout uses them either."""
        self._store = None

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def store(self) -> RepoStore:
        if self._store is None:
            raise RepositoryNotFound(self._path)
        return self._store

    def init(
        self,
        user_name: str,
        user_email: str,
        *,
        remove_old: bool = False,
        default_backend: str | None = None,
    ) -> str:
        """Create the repository; refuses to replace an existing one unless ``remove_old=True``."""
        if not isinstance(user_name, str) or not user_name.strip():
            raise ValueError('init needs a user_name (who commits are by)')
        if not isinstance(user_email, str) or '@' not in user_email:
            raise ValueError(f'init needs a user_email like ada@example.org, got {user_email!r}')
        code = backend_code(default_backend) if default_backend else ''
        sdir = store_dir(self._path)
        if is_repository(self._path) or sdir.exists():
            if not check_flag('remove_old', remove_old):
                raise RepositoryExists(self._path)
            held = WriterLock(sdir / 'writer.lock', self._path).is_locked_by_other()
            if held is not None:
                raise WriterLockHeld(self._path, held)
            if self._store is not None:
                self._store.close()
            ENVIRONMENTS.forget(str(sdir / 'history'))
            ENVIRONMENTS.forget(str(sdir / 'staging'))
            shutil.rmtree(sdir)
            self._store = None
        os.makedirs(self._path, exist_ok=True)
        tmp = Path(self._path) / f'.hangarfs-init-{os.getpid()}'
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        (tmp / 'data').mkdir()
        env = ENVIRONMENTS.open(EnvSpec(str(tmp / 'history'), HISTORY_DBS, sync=True))
        tables = Tables(env, HISTORY_DBS)
        with env.write() as txn:
            for k, v in {
                'software_version': __version__,
                'user_name': user_name.strip(),
                'user_email': user_email.strip(),
                'default_backend': code,
                'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
                'staging_consumed': '-1',
            }.items():
                tables['config'].put(k.encode(), v.encode(), txn=txn)
            tables['refs'].put(branch_ref(DEFAULT_BRANCH).encode(), b'', txn=txn)
        ENVIRONMENTS.forget(str(tmp / 'history'))
        (tmp / FORMAT_FILE).write_text(FORMAT_TEXT)
        os.rename(tmp, sdir)
        self._store = RepoStore(self._path)
        return self._path

    # ------------------------------------------------------------------ checkouts

    def checkout(self, write: bool = False, *, branch: str = '', commit: str = '') -> Any:
        """A read-only checkout, or the one writer (``write=True``).

        A reader reads ``commit`` (a digest, unique prefix, tag or branch), else the head of ``branch``;
        the writer works on ``branch``. Without either, both use the branch the staging area is on
        (the writer's branch: ``master`` until a writer checks out another), as Hangar does.
        """
        _check_checkout_arguments(write, branch, commit)
        store = self.store
        if write:
            if commit:
                raise ValueError(
                    f'a write checkout works on a branch head, not on commit={commit!r}; pass branch= '
                    '(or open a read-only checkout of that commit with repo.checkout(commit=...))'
                )
            return WriterCheckout(
                store,
                branch,
                store.config_get('user_name'),
                store.config_get('user_email'),
                {'purpose': 'python writer checkout'},
            )
        if commit:
            resolved = store.refs.resolve(commit)
            return ReaderCheckout(store, resolved.commit, resolved.branch)
        name = branch or self._staging_branch()
        head = store.refs.branch_head(name)
        if head is None:
            raise RefNotFound(name, 'branch')
        return ReaderCheckout(store, head, name)

    def _staging_branch(self) -> str:
        """The branch the staging area is on (where a writer without ``branch=`` works)."""
        name = self.store.staging_branch()
        return name if self.store.refs.branch_head(name) is not None else DEFAULT_BRANCH

    # ------------------------------------------------------------------ branches

    def create_branch(self, name: str, base_commit: str | None = None) -> BranchHead:
        store = self.store
        check_name(name, 'branch name')
        if base_commit:
            base = store.refs.resolve(base_commit).commit
        else:
            base = self._writer_head()
        if not base:
            raise NoCommitsYet('', f'so there is no commit to start branch {name!r} from')
        with store.history.write() as txn:
            if store.refs.get(branch_ref(name), txn=txn) is not None:
                raise BranchExists(name)
            store.refs.add_if_new(branch_ref(name), base, txn=txn)
        return BranchHead(name, base)

    def _writer_head(self) -> str:
        store = self.store
        branch = StagingArea(store).info().branch or DEFAULT_BRANCH
        return store.refs.branch_head(branch) or store.refs.branch_head(DEFAULT_BRANCH) or ''

    def list_branches(self) -> list[str]:
        """Local branches, then remote-tracking ones (``origin/master``), as Hangar lists them."""
        refs = self.store.refs
        return sorted(refs.list('branch')) + sorted(refs.remote_branches())

    def remove_branch(self, name: str, *, force_delete: bool = False) -> BranchHead:
        store = self.store
        head = store.refs.branch_head(name)
        if head is None:
            raise RefNotFound(name, 'branch')
        if is_remote_branch_name(name):  # a remote-tracking branch: the next fetch brings it back
            with store.history.write() as txn:
                store.refs.remove_if_equals(remote_branch_ref(name), head, txn=txn)
            return BranchHead(name, head)
        staging = StagingArea(store)
        if staging.info().branch == name:
            raise BranchInUse(
                f'branch {name!r} holds the staging area (the writer works on it); open a writer on another '
                'branch first'
            )
        others = {b: h for b, h in store.refs.list('branch').items() if b != name}
        if not others:
            raise BranchInUse(f'branch {name!r} is the only branch; a repository keeps at least one')
        if (
            not check_flag('force_delete', force_delete)
            and head
            and not any(is_ancestor(self._parents, head, h) for h in others.values())
        ):
            raise BranchNotMerged(
                f'branch {name!r} has commits no other branch contains (head {head[:12]}); merge it first, '
                'or pass force_delete=True to drop them from the branch list'
            )
        with store.history.write() as txn:
            store.refs.remove_if_equals(branch_ref(name), head, txn=txn)
        return BranchHead(name, head)

    # ------------------------------------------------------------------ history display

    def _parents(self, commit: str) -> tuple[str, ...]:
        return self.store.objects.commit(commit).parents

    def log(
        self,
        branch: str | None = None,
        commit: str | None = None,
        *,
        return_contents: bool = False,
        show_time: bool = False,
        show_user: bool = False,
        graph: bool = False,
        max_count: int | None = None,
    ) -> dict[str, Any] | None:
        """Print the history of a branch or commit (default: the writer's branch), newest first.

        One line per commit as ``git log --oneline`` prints it (``HEAD ->`` marks the writer's branch);
        ``graph=True`` draws the commit graph as ``git log --graph --oneline`` does; ``max_count``
        shows only the newest commits. ``return_contents=True`` returns Hangar's dictionary instead
        (``head``, ``order``, ``ancestors``, ``specs``, ``branch_heads``; see ``hangarfs.engine.log``).
        """
        store = self.store
        if commit:
            head = store.refs.resolve(commit).commit
        else:
            name = branch or StagingArea(store).info().branch or DEFAULT_BRANCH
            found = store.refs.branch_head(name)
            if found is None:
                raise RefNotFound(name, 'branch')
            head = found
        return show_log(
            store,
            head,
            return_contents=return_contents,
            show_time=show_time,
            show_user=show_user,
            graph=graph,
            max_count=max_count,
            writer_branch=StagingArea(store).info().branch or DEFAULT_BRANCH,
        )

    def summary(
        self, *, branch: str = '', commit: str = '', return_contents: bool = False
    ) -> dict[str, Any] | None:
        """Print what the repository holds at a branch or commit (default: master)."""
        ref = commit or branch or DEFAULT_BRANCH
        info = summarize(self.store, self._path, ref, self.list_branches())
        if return_contents:
            return info
        print(format_summary(info))
        return None

    # ------------------------------------------------------------------ diff, merge, tags (issue 3)

    def diff(self, a: str, b: str) -> DiffResult:
        """How ``b`` differs from ``a`` (branch names, tags, commit digests or unique prefixes).

        ``.columns[name].added / .deleted / .mutated`` (sample keys; ``(key, subkey)`` in nested
        columns), ``.schema_changes`` and ``.metadata``; the cost follows the size of the difference.
        """
        store = self.store
        ca, cb = store.refs.resolve(a).commit, store.refs.resolve(b).commit
        return diff_snapshots(
            store.nodes, store.objects.snapshot(ca), store.objects.snapshot(cb), a_name=ca, b_name=cb
        )

    def merge(
        self,
        message: str,
        master_branch: str = DEFAULT_BRANCH,
        dev_branch: str | None = None,
        *,
        strategy: str | None = None,
    ) -> str:
        """Merge ``dev_branch`` (a branch, tag or commit) into ``master_branch``; returns its new head.

        Takes the writer lock and needs a clean staging area. Fast-forwards when it can, otherwise
        makes a commit with two parents from a three-way merge against the merge base (criss-cross
        histories: a recursive merge of the bases, see ``hangarfs.engine.merge``). Conflicts raise
        MergeConflictError and change nothing, unless ``strategy`` is 'ours' (keep master's side) or
        'theirs' (take dev's); the commit message then lists what was resolved.
        """
        if dev_branch is None:  # as Hangar's signature says: message, master_branch, dev_branch
            raise TypeError(
                "Repository.merge() missing 1 required argument: 'dev_branch' (the branch, tag or commit "
                "to merge): repo.merge('message', 'master', 'dev')"
            )
        if not dev_branch:
            raise ValueError('merge needs dev_branch=, the branch (or tag, or commit) to merge')
        return merge_with_writer_lock(
            self.store, master_branch=master_branch, dev_ref=dev_branch, message=message, strategy=strategy
        ).commit

    def create_tag(self, name: str, commit: str | None = None, message: str | None = None) -> Tag:
        """Fix the tag ``name`` to ``commit`` (any ref; default: the writer's branch head); it never moves."""
        store = self.store
        target = store.refs.resolve(commit).commit if commit else self._writer_head()
        if not target:
            raise NoCommitsYet('', f'so there is no commit to tag {name!r}')
        return tag_refs.create_tag(
            store,
            name,
            target,
            tagger=store.config_get('user_name'),
            email=store.config_get('user_email'),
            message=message or '',
        )

    def list_tags(self) -> list[str]:
        return [t.name for t in tag_refs.list_tags(self.store)]

    def get_tag(self, name: str) -> Tag:
        """The tag ``name``: its commit, who made it, when, and its message."""
        return tag_refs.get_tag(self.store, name)

    def remove_tag(self, name: str) -> Tag:
        return tag_refs.remove_tag(self.store, name)

    # ------------------------------------------------------------------ remotes (issue 13)

    @property
    def remote(self) -> Remotes:
        """The remotes: ``repo.remote.add('origin', 's3://bucket/team/mnist')``, ``push``, ``fetch``,
        ``fetch_data``, ``fetch_data_sample`` ... (see ``hangarfs.engine.remote.api``)."""
        from hangarfs.engine.remote.api import Remotes

        self.store  # noqa: B018 (RepositoryNotFound before anything else)
        remotes: Remotes | None = self.__dict__.get('_remotes')
        if remotes is None:
            remotes = self.__dict__['_remotes'] = Remotes(self)
        return remotes

    def clone(
        self,
        user_name: str,
        user_email: str,
        remote_address: str,
        *,
        remove_old: bool = False,
        **options: Any,
    ) -> str:
        """Make this repository a clone of the remote at ``remote_address``: its history, schemas and
        trees, no sample data (fetch it with ``repo.remote.fetch_data``, or mount lazily). The remote
        is added as ``origin`` (with ``options``, as ``repo.remote.add`` takes them); returns the
        local branch made from the remote's (``master``)."""
        from hangarfs.engine.remote.clone import clone_repository

        branch, _ = clone_repository(
            self, user_name, user_email, remote_address, remove_old=remove_old, options=options
        )
        return branch

    # ------------------------------------------------------------------ configuration and checks

    @property
    def default_backend(self) -> str | None:
        """Backend for new columns that name none (None: chosen by sample size)."""
        code = self.store.config_get('default_backend')
        return backend_name(code) if code else None

    @default_backend.setter
    def default_backend(self, value: str | None) -> None:
        self.store.config_set('default_backend', backend_code(value) if value else '')

    def verify_repo_integrity(self, progress: Callable[[int], None] | None = None) -> bool:
        """Re-hash every commit, tree node and sample: True, or IntegrityError listing the problems
        (``.report``), as Hangar returns True or raises. ``verify_report()`` gives the counts too."""
        report = self.verify_report(progress)
        if not report.ok:
            raise IntegrityError(report)
        return True

    def verify_report(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """What ``verify_repo_integrity`` checks, as a report (commits, nodes, samples, bytes read,
        problems) that does not raise."""
        return verify_store(self.store, progress)

    @property
    def writer_lock_held(self) -> bool:
        """True while a writer (a checkout, a staging mount, a merge) holds the repository's lock."""
        return WriterLock(self.store.lock_path, self._path).is_locked_by_other() is not None

    def force_release_writer_lock(self) -> bool:
        """True: the writer lock is free. Hangar keeps its lock in a record that a crashed writer leaves
        behind, for this method to break; hangarfs's lock is an OS file lock that the kernel releases
        when its holder exits, however it exits, so there is never a stale one. A live holder is never
        overridden (its staged writes would be lost or mangled): WriterLockHeld names it instead."""
        holder = WriterLock(self.store.lock_path, self._path).is_locked_by_other()
        if holder is None:
            return True
        err = WriterLockHeld(self._path, holder)
        mine = holder.get('pid') == os.getpid()
        hint = (
            'it is a checkout of this very process: close it (co.close())'
            if mine
            else 'the holder is alive; close that checkout or stop that process, and the lock goes with it'
        )
        err.args = (f'cannot force-release the writer lock: {err.args[0]} ({hint})',)
        raise err

    @property
    def size_nbytes(self) -> int:
        """Bytes the repository's store takes on disk (its files' sizes, as Hangar counts them)."""
        return dir_size(self.store.dir)

    @property
    def size_human(self) -> str:
        """``size_nbytes`` for people: '1.23 GB' (decimal units, as Hangar prints them)."""
        return format_bytes(self.size_nbytes)

    @property
    def version(self) -> str:
        """The version of hangarfs that created the repository."""
        return self.store.config_get('software_version') or FIRST_VERSION

    def __repr__(self) -> str:
        if self._store is None:
            return (
                f'<Repository at {self._path}: not initialized (call .init(user_name=..., user_email=...))>'
            )
        branches = self.list_branches()
        return (
            f'<Repository at {self._path}: {len(branches)} branch(es) [{", ".join(branches)}], '
            f'master at {(self.store.refs.branch_head(DEFAULT_BRANCH) or "(no commits)")[:12]}>'
        )


def _check_checkout_arguments(write: object, branch: object, commit: object) -> None:
    """Hangar's argument checks: ``write`` is a bool, ``branch`` and ``commit`` are str (so that
    ``repo.checkout('dev')`` is an error, not a writer on master)."""
    if not isinstance(write, (bool, np.bool_)):
        hint = f'; to check out branch {write!r}, pass branch={write!r}' if isinstance(write, str) else ''
        raise ValueError(f'repo.checkout(write=...) takes True or False, got {write!r}{hint}')
    for arg, value in (('branch', branch), ('commit', commit)):
        if not isinstance(value, str):
            raise ValueError(
                f'repo.checkout({arg}=...) takes the {arg} name as a str, got {type(value).__name__} '
                f'{value!r}' + ('; for a writer pass write=True' if isinstance(value, bool) else '')
            )
