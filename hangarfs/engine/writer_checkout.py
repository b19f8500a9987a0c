"""The writer checkout: the one writer of a repository, staging changes on a branch and committing.

It becomes the writer through a :class:`~hangarfs.engine.writer.WriterSession` (the lock, a checked
staging area, recovery) and reads and writes through a :class:`~hangarfs.engine.access.StagedAccess`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hangarfs.engine.checkout import Checkout
from hangarfs.engine.checkout_diff import WriterCheckoutDiff
from hangarfs.engine.column_schemas import make_schema, ndarray_schema
from hangarfs.engine.columns import _ColumnBase
from hangarfs.engine.commit import commit_staging
from hangarfs.engine.keys import check_name
from hangarfs.engine.merge import merge_into_branch
from hangarfs.engine.properties import normalize_properties
from hangarfs.engine.records import ColumnSchema
from hangarfs.engine.refs import is_remote_branch_name
from hangarfs.engine.staged_access import StagedAccess
from hangarfs.engine.staging import StagingArea
from hangarfs.engine.staging_status import has_staged_changes, settle
from hangarfs.engine.store import RepoStore
from hangarfs.engine.validate import check_flag
from hangarfs.engine.writer import WriterSession
from hangarfs.errors import (
    ColumnExists,
    ColumnInUse,
    ColumnNotFound,
    NothingStaged,
    NothingToCommit,
    ReadOnlyError,
    RefNotFound,
    StagingDirty,
)

RESET = (
    'this object of a column belongs to a staging area that was reset; get the column again from the '
    'checkout (co.columns[name] or co[name])'
)


class WriterCheckout(Checkout):
    """The one writer: stages changes on a branch and commits them.

    ``branch=''`` means the branch the staging area is on (``master`` in a new repository).
    """

    _writable = True
    _access: StagedAccess

    def __init__(
        self, store: RepoStore, branch: str, author: str, email: str, lock_info: dict[str, Any]
    ) -> None:
        if is_remote_branch_name(branch):
            raise ReadOnlyError(
                f'{branch!r} is a remote-tracking branch (only fetch and push move it); to change it, '
                f"start a local branch there: repo.create_branch('NAME', {branch!r}), then check that out "
                'for writing'
            )
        session = WriterSession(store, **lock_info)
        try:
            staging = session.staging
            info = staging.info()
            if not branch:  # Hangar: the branch the staging area is on
                known = info.branch and store.refs.branch_head(info.branch) is not None
                branch = info.branch if known else 'master'
            head = store.refs.branch_head(branch)
            if head is None:
                raise RefNotFound(branch, 'branch')
            if info.branch != branch or info.base != head:
                if settle(store, staging):  # real changes (entries that change nothing are dropped)
                    if info.branch != branch:
                        raise StagingDirty(
                            f'the staging area holds uncommitted changes on branch {info.branch!r}; commit '
                            f'them or reset the staging area on that branch before writing to {branch!r}'
                        )
                    raise StagingDirty(
                        f'branch {branch!r} moved to {head[:12]} while changes were staged on '
                        f'{info.base[:12]}; reset the staging area (they cannot be committed on the new head)'
                    )
                staging.set_info(branch, head)
            access = StagedAccess(store, head, store.objects.snapshot(head), staging)
        except BaseException:
            session.close()
            raise
        super().__init__(access, branch)
        self._session = session
        self._author = author
        self._email = email

    @property
    def _staging(self) -> StagingArea:
        return self._access.staging

    # ------------------------------------------------------------------ columns

    def _refuse_in_block(self, what: str) -> None:
        """As Hangar: columns are not added inside a ``with`` block of the checkout or of a column."""
        self._check_writable()
        if self._columns._any_is_conman():
            raise ColumnInUse(f'cannot {what} inside a `with` block (as in Hangar); do it after the block')

    def _add_column(self, name: str, schema: ColumnSchema) -> _ColumnBase:
        self._check_writable()
        check_name(name, 'column name')
        if name in self._schemas():
            raise ColumnExists(name)
        self._access.add_column(name, schema)
        self._column_cache.pop(name, None)
        return self._column(name)

    def _delete_column(self, name: str) -> None:
        self._check_writable()
        if name not in self._schemas():
            raise ColumnNotFound(name, list(self._schemas()))
        self._access.drop_column(name)
        self._column_cache.pop(name, None)

    def add_ndarray_column(
        self,
        name: str,
        shape: int | Sequence[int] | None = None,
        dtype: Any = None,
        prototype: np.ndarray | None = None,
        variable_shape: bool = False,
        contains_subsamples: bool = False,
        *,
        backend: str | None = None,
        backend_options: Mapping[str, Any] | None = None,
        heterogeneous: bool = False,
    ) -> _ColumnBase:
        """A column of numpy arrays of one dtype and shape (the maximum shape if ``variable_shape``).

        ``heterogeneous=True`` (with no shape, dtype or prototype): every sample has its own dtype and
        shape, of any number of dimensions (the parameters of a model, in a nested column).
        """
        self._refuse_in_block(f'add column {name!r}')
        schema = ndarray_schema(
            name,
            shape=shape,
            dtype=dtype,
            prototype=prototype,
            variable_shape=variable_shape,
            contains_subsamples=contains_subsamples,
            backend=backend,
            backend_options=backend_options,
            heterogeneous=heterogeneous,
            default_backend=self._store.config_get('default_backend'),
        )
        return self._add_column(name, schema)

    def add_str_column(
        self,
        name: str,
        contains_subsamples: bool = False,
        *,
        backend: str | None = None,
        backend_options: Mapping[str, Any] | None = None,
    ) -> _ColumnBase:
        """A column of str values (UTF-8)."""
        return self._add_text_column('str', name, contains_subsamples, backend, backend_options)

    def add_bytes_column(
        self,
        name: str,
        contains_subsamples: bool = False,
        *,
        backend: str | None = None,
        backend_options: Mapping[str, Any] | None = None,
    ) -> _ColumnBase:
        """A column of bytes values."""
        return self._add_text_column('bytes', name, contains_subsamples, backend, backend_options)

    def _add_text_column(
        self,
        kind: str,
        name: str,
        nested: bool,
        backend: str | None,
        options: Mapping[str, Any] | None,
    ) -> _ColumnBase:
        self._refuse_in_block(f'add column {name!r}')
        schema = make_schema(
            kind=kind,
            nested=nested,
            dtype=None,
            shape=None,
            variable=False,
            nbytes=0,
            backend=backend,
            options=options,
            default_backend=self._store.config_get('default_backend'),
        )
        return self._add_column(name, schema)

    # ------------------------------------------------------------------ commit, merge, reset, close

    def commit(self, commit_message: str, *, properties: Mapping[str, Any] | None = None) -> str:
        """Commit everything staged; returns the new commit's digest.

        ``properties``: key -> bool/int/float/str recorded on this commit alone (experiment parameters,
        metrics); read back with ``checkout.commit_properties``. With properties, a commit is made even
        if nothing is staged.
        """
        self._check_writable()
        if not isinstance(commit_message, str) or not commit_message.strip():
            raise ValueError('a commit needs a non-empty message')
        props = normalize_properties(properties)
        access = self._access
        access.flush()
        try:
            digest = commit_staging(
                self._store, access.staging, commit_message, self._author, self._email, properties=props
            )
        except NothingToCommit:
            access.reload()  # entries that changed nothing were dropped
            self._column_cache.clear()
            raise
        access.rebase(digest, self._store.objects.snapshot(digest))
        self._column_cache.clear()
        return digest

    @property
    def diff(self) -> WriterCheckoutDiff:
        """Also ``co.diff.staged()`` (staged changes against the base) and ``co.diff.status()``."""
        return WriterCheckoutDiff(self._access)

    def merge(self, message: str, dev_branch: str, *, strategy: str | None = None) -> str:
        """Merge ``dev_branch`` (or a tag or commit) into this checkout's branch; returns the new head.

        Fast-forwards when possible, else makes a merge commit (see ``hangarfs.engine.merge``).
        Needs a clean staging area; conflicts raise MergeConflictError unless ``strategy`` is
        'ours' or 'theirs'.
        """
        self._check_writable()
        access = self._access
        access.flush()
        assert self._branch is not None
        result = merge_into_branch(
            self._store,
            access.staging,
            master_branch=self._branch,
            dev_ref=dev_branch,
            message=message,
            author=self._author,
            email=self._email,
            strategy=strategy,
        )
        access.rebase(result.commit, self._store.objects.snapshot(result.commit))
        self._column_cache.clear()
        return result.commit

    def reset_staging_area(self, *, force: bool = False) -> str:
        """Drop every staged change and return to the branch head; returns the head's digest.

        As in Hangar, calling it is the decision to discard (there is no undo), and with nothing
        staged it raises NothingStaged (a RuntimeError), unless ``force=True``.
        """
        self._check_writable()
        force = check_flag('force', force)
        old = self._access
        old.flush()
        if not force and not has_staged_changes(self._store, old.staging):
            raise NothingStaged(
                'No changes made in staging area: no reset necessary (reset_staging_area(force=True) '
                'returns the head without this error)'
            )
        info = old.staging.info()
        head = self._store.refs.branch_head(self._branch or info.branch) or ''
        old.staging.clear(info.branch, head, info.generation + 1)
        # as in Hangar: column objects of the reset area refuse every use from now on
        new = StagedAccess(self._store, head, self._store.objects.snapshot(head), old.staging)
        new.with_blocks = old.with_blocks
        old.close(RESET, closed_as='a reset staging area')
        self._access = new
        self._column_cache.clear()
        return head

    def close(self) -> None:
        if self._access.closed:
            return
        try:
            self._access.batch_depth = 0
            self._access.flush()
        finally:
            self._session.close()
            super().close()
