"""Checkouts: a read-only view of one commit, or the one writer over a branch's staging area.

Opening either is O(1): a reader reads one commit record and its snapshot; a writer takes the writer
lock and reads the staging area's branch and base. Columns, samples and metadata are looked up lazily
through the trees, never by loading a whole commit, and only through the checkout's access object
(``access.py``). This module holds what both kinds share and the reader; the writer is in
``writer_checkout.py``.
"""

from __future__ import annotations

from hangarfs.engine.access import ReadAccess
from hangarfs.engine.checkout_diff import CheckoutDiff
from hangarfs.engine.checkout_facades import Columns, Metadata
from hangarfs.engine.checkout_mapping import CheckoutMapping
from hangarfs.engine.columns import Column, _ColumnBase
from hangarfs.engine.nested import NestedColumn
from hangarfs.engine.properties import PropertyValue
from hangarfs.engine.records import ColumnSchema, Snapshot
from hangarfs.engine.staged_access import StagedAccess
from hangarfs.engine.store import RepoStore
from hangarfs.errors import ColumnNotFound, NoCommitsYet, ReadOnlyError


class Checkout(CheckoutMapping):
    """What read and write checkouts share."""

    _writable = False

    def __init__(self, access: ReadAccess, branch: str | None) -> None:
        self._access = access
        self._branch = branch
        self._column_cache: dict[str, _ColumnBase] = {}
        self._columns = Columns(self)
        self._metadata = Metadata(self)

    # ------------------------------------------------------------------ public

    @property
    def columns(self) -> Columns:
        """The columns: ``co.columns['images']``, ``'images' in co.columns``, ``len(co.columns)``."""
        self._check_open()
        return self._columns

    @property
    def metadata(self) -> Metadata:
        """Versioned str -> str pairs: ``co.metadata['source'] = 'mnist v1'``."""
        self._check_open()
        return self._metadata

    @property
    def commit_hash(self) -> str:
        self._check_open()
        return self._access.commit

    @property
    def branch_name(self) -> str | None:
        self._check_open()
        return self._branch

    @property
    def commit_properties(self) -> dict[str, PropertyValue]:
        """The properties recorded on this checkout's commit (a writer: on its base commit)."""
        self._check_open()
        commit = self._access.commit
        return dict(self._store.objects.commit(commit).properties) if commit else {}

    @property
    def repo_path(self) -> str:
        """The repository's directory (what ``Repository(path)`` opens again, e.g. in another process)."""
        return self._store.path

    @property
    def iswriteable(self) -> bool:
        self._check_open()
        return self._writable

    @property
    def diff(self) -> CheckoutDiff:
        """Differences from this checkout: ``co.diff.commit(ref)``, ``co.diff.branch(name)``."""
        return CheckoutDiff(self._access)

    def close(self) -> None:
        self._access.close()
        self._column_cache.clear()

    # ------------------------------------------------------------------ what the facades use

    @property
    def _closed(self) -> bool:
        return self._access.closed

    @property
    def _store(self) -> RepoStore:
        return self._access.store

    @property
    def _commit(self) -> str:
        return self._access.commit

    @property
    def _snapshot(self) -> Snapshot:
        return self._access.snapshot

    def _check_open(self) -> None:
        self._access.check_open()

    def _check_writable(self) -> None:
        self._check_open()
        if not self._writable:
            raise ReadOnlyError(
                'this checkout is read-only; open one with repo.checkout(write=True) to write'
            )

    def _schemas(self) -> dict[str, ColumnSchema]:
        return self._access.schemas()

    def _column(self, name: str) -> _ColumnBase:
        self._check_open()
        col = self._column_cache.get(name)
        if col is not None:
            return col
        schemas = self._schemas()
        schema = schemas.get(name)
        if schema is None:
            raise ColumnNotFound(name, list(schemas))
        col = (NestedColumn if schema.nested else Column)(self._access, name, schema, self)
        self._column_cache[name] = col
        return col

    def _delete_column(self, name: str) -> None:
        raise ReadOnlyError('this checkout is read-only; open one with repo.checkout(write=True) to write')

    def _enter_batch(self) -> None:
        """A checkout-wide ``with`` block (``with co:`` or ``with co.columns:``) opens."""
        access = self._access
        access.with_blocks += 1
        if isinstance(access, StagedAccess):
            access.enter_batch()

    def _exit_batch(self) -> None:
        access = self._access
        access.with_blocks = max(0, access.with_blocks - 1)
        if isinstance(access, StagedAccess):
            access.exit_batch()

    def __repr__(self) -> str:
        if self._access.closed:
            return f'<{type(self).__name__} (closed)>'
        where = f'branch {self._branch!r} at ' if self._branch else ''
        head = self._commit[:12] if self._commit else '(no commits yet)'
        cols = ', '.join(sorted(self._schemas())) or 'no columns'
        return f'<{type(self).__name__} of {self._store.path}: {where}commit {head}; columns: {cols}>'


class ReaderCheckout(Checkout):
    """A read-only view of one commit. Any number can be open, in any number of processes."""

    def __init__(self, store: RepoStore, commit: str, branch: str | None = None) -> None:
        if not commit:
            raise NoCommitsYet(branch or '', 'so there is nothing to read')
        super().__init__(ReadAccess(store, commit, store.objects.snapshot(commit)), branch)
