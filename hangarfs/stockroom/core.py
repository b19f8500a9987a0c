"""``StockRoom``: data, models and experiment tags next to the code, versioned by hangarfs.

The git-tracked ``head.stock`` decides what a stock reads and where it writes (see ``pointer.py``):

- reads come from the commit it names, plus what has been staged on top of that commit in this
  repository (as a git working tree shows uncommitted edits);
- writes go to the staging area of its branch, and only while that commit is the branch head: on an
  older version of the code (after ``git checkout`` of an older commit) a write is refused with
  :class:`~hangarfs.errors.StockBehindBranch`, which says how to go on (``checkout_branch``).

Outside ``optimize()`` every access opens a checkout and closes it again, so a process holds the
repository's writer lock only for the moment of a write; the shell's ``stock commit`` or another
process can commit in between. Inside ``with stock.optimize():`` one reader (and, from the first write
on, one writer) serve the whole block; ``stock.commit`` and ``get_hangar_checkout(write=True)`` use that
same writer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hangarfs.engine.checkout import Checkout, ReaderCheckout
from hangarfs.engine.repository import Repository
from hangarfs.engine.staging import StagingArea
from hangarfs.engine.writer_checkout import WriterCheckout
from hangarfs.errors import (
    NotPicklable,
    ReadOnlyError,
    RefNotFound,
    RepositoryNotFound,
    StagingDirty,
    StockBehindBranch,
    StockNotFound,
    WriterLockHeld,
)
from hangarfs.stockroom.data import Data
from hangarfs.stockroom.models import Model
from hangarfs.stockroom.pointer import (
    DEFAULT_BRANCH,
    POINTER_FILE,
    Pointer,
    find_stock_root,
    read_pointer,
    write_pointer,
)
from hangarfs.stockroom.tags import Tag, clear_pending_tags, pending_tags


def _ref_error(ref: str, message: str) -> RefNotFound:
    err = RefNotFound(ref)
    err.args = (message,)
    return err


class StockRoom:
    """One stock: ``stock.data``, ``stock.model`` and ``stock.tag``, versioned by hangarfs.

    ``path``: the stock root, trusted as given; by default the nearest directory from the working
    directory upwards that holds ``head.stock``, a hangarfs repository or ``.git``.
    ``read_only=True``: never writes and never takes the writer lock; it pickles (DataLoader workers).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False) -> None:
        root = Path(path).resolve() if path is not None else find_stock_root(Path.cwd())
        repo = Repository(root, exists=False)
        if not repo.initialized:
            pointer = read_pointer(root)
            if pointer is not None and pointer.commit:
                raise StockNotFound(
                    f'{root / POINTER_FILE} points at commit {pointer.commit[:12]}, but there is no hangarfs '
                    f'repository in {root} (the store is not in git): copy or clone the repository there, '
                    'or run `stock init` to start a new one'
                )
            raise StockNotFound(f'{root} is not a stock: run `stock init` there to create one')
        self._root = root
        self._repo = repo
        self._read_only = read_only
        self._pinned: Pointer | None = None  # set in an unpickled (worker) copy
        self._opt_depth = 0
        self._opt_pointer: Pointer | None = None
        self._opt_reader: ReaderCheckout | None = None
        self._opt_writer: WriterCheckout | None = None
        self._lent_writer: WriterCheckout | None = None
        self.data = Data(self)
        self.model = Model(self)
        self.tag = Tag(self)

    # ------------------------------------------------------------------ where and what

    @property
    def path(self) -> Path:
        """The stock root."""
        return self._root

    stockroot = path

    @property
    def repository(self) -> Repository:
        return self._repo

    @property
    def read_only(self) -> bool:
        return self._read_only

    def pointer(self) -> Pointer:
        """What head.stock says now (the branch head when there is no head.stock)."""
        if self._pinned is not None:
            return self._pinned
        if self._opt_pointer is not None:
            return self._opt_pointer
        try:
            pointer = read_pointer(self._root)
        except ValueError as err:
            raise StockNotFound(str(err)) from err
        if pointer is not None:
            return pointer
        branch = StagingArea(self._repo.store).info().branch or DEFAULT_BRANCH
        return Pointer(self._repo.store.refs.branch_head(branch) or '', branch, tracked=False)

    @property
    def head(self) -> str:
        """The commit this stock reads ('' before the first commit)."""
        return self.pointer().commit

    @property
    def branch(self) -> str:
        return self.pointer().branch

    # ------------------------------------------------------------------ checkouts

    def _check_commit(self, pointer: Pointer) -> None:
        if pointer.commit and not self._repo.store.objects.has_commit(pointer.commit):
            raise _ref_error(
                pointer.commit,
                f'{POINTER_FILE} names commit {pointer.commit[:12]}, which this repository does not have '
                '(made in another copy of it?): fetch it into this repository first',
            )

    def _open_reader(self, pointer: Pointer) -> ReaderCheckout | None:
        if not pointer.commit:
            return None
        self._check_commit(pointer)
        checkout: ReaderCheckout = self._repo.checkout(commit=pointer.commit)
        return checkout

    def _open_writer(self, pointer: Pointer) -> WriterCheckout:
        if self._read_only:
            raise ReadOnlyError(
                'this StockRoom is read-only (read_only=True, or a copy made for workers); open '
                'StockRoom() to write'
            )
        self._check_commit(pointer)
        try:
            co: WriterCheckout = self._repo.checkout(write=True, branch=pointer.branch)
        except RefNotFound as err:
            raise _ref_error(
                pointer.branch,
                f'{POINTER_FILE} names branch {pointer.branch!r}, which this repository does not have '
                '(made in another copy of it?): fetch it, or start a branch here with '
                "stock.checkout_branch('NAME')",
            ) from err
        if co.commit_hash != pointer.commit:
            head = co.commit_hash
            co.close()
            raise StockBehindBranch(pointer.commit, pointer.branch, head)
        return co

    def _active_writer(self) -> WriterCheckout | None:
        if self._opt_writer is not None:
            return self._opt_writer
        if self._lent_writer is not None and not self._lent_writer._access.closed:
            return self._lent_writer
        self._lent_writer = None
        return None

    def _has_staged_changes(self, pointer: Pointer) -> bool:
        """Changes staged on top of the commit this stock reads, on its branch."""
        if self._read_only:
            return False
        staging = StagingArea(self._repo.store)
        info = staging.info()
        return (
            info.branch == pointer.branch
            and info.base == pointer.commit
            and self._repo.store.refs.branch_head(pointer.branch) == pointer.commit
            and staging.is_dirty()
        )

    @contextmanager
    def _reading(self) -> Iterator[Checkout | None]:
        """A checkout to read through (None when there is nothing to read yet)."""
        writer = self._active_writer()
        if writer is not None:
            yield writer
            return
        pointer = self.pointer()
        if self._has_staged_changes(pointer):
            try:
                if self._opt_depth:
                    self._opt_writer = self._open_writer(pointer)
                    yield self._opt_writer
                    return
                co = self._open_writer(pointer)
            except WriterLockHeld:
                pass  # another process writes: read the committed state, as any reader does
            else:
                try:
                    yield co
                finally:
                    co.close()
                return
        if self._opt_depth:
            if self._opt_reader is None:
                self._opt_reader = self._open_reader(pointer)
            yield self._opt_reader
            return
        reader = self._open_reader(pointer)
        try:
            yield reader
        finally:
            if reader is not None:
                reader.close()

    @contextmanager
    def _writing(self) -> Iterator[WriterCheckout]:
        """The writer checkout of this stock's branch (refused when head.stock is behind the branch)."""
        writer = self._active_writer()
        if writer is not None:
            yield writer
            return
        pointer = self.pointer()
        if self._opt_depth:
            self._opt_writer = self._open_writer(pointer)
            yield self._opt_writer
            return
        co = self._open_writer(pointer)
        try:
            yield co
        finally:
            co.close()

    @contextmanager
    def optimize(self) -> Iterator[StockRoom]:
        """Keep one checkout open for the whole block (a writer too, from its first write on).

        head.stock is read once, on entry. Blocks nest; the outermost one closes the checkouts, which
        makes every write of the block durable.
        """
        if self._opt_depth == 0:
            self._opt_pointer = self.pointer()
        self._opt_depth += 1
        try:
            yield self
        finally:
            self._opt_depth -= 1
            if self._opt_depth == 0:
                self._close_optimized()

    def _close_optimized(self) -> None:
        writer, reader = self._opt_writer, self._opt_reader
        self._opt_writer = self._opt_reader = None
        self._opt_pointer = None
        try:
            if writer is not None:
                writer.close()
        finally:
            if reader is not None:
                reader.close()

    def get_hangar_checkout(self, write: bool = False) -> Any:
        """The hangarfs checkout this stock uses: a reader of the commit in head.stock, or the writer of
        its branch (refused when head.stock is behind the branch).

        Inside ``optimize()`` the writer is the one the block uses (do not close it). Outside, close the
        checkout when done; until then this stock's own writes go through it too.
        """
        if not write:
            pointer = self.pointer()
            reader = self._open_reader(pointer)
            if reader is None:
                raise _ref_error(pointer.branch, f'nothing is committed on branch {pointer.branch!r} yet')
            return reader
        active = self._active_writer()
        if active is not None:
            return active
        writer = self._open_writer(self.pointer())
        if self._opt_depth:
            self._opt_writer = writer
        else:
            self._lent_writer = writer
        return writer

    # ------------------------------------------------------------------ commits and branches

    def commit(self, message: str, update_head: bool = True) -> str:
        """Commit what is staged, with the tags set since the last commit as its properties, and write
        the new commit's digest to head.stock (unless ``update_head=False``). Returns the digest."""
        pointer = self.pointer()
        with self._writing() as co:
            tags = pending_tags(self._repo, pointer.branch)
            digest = co.commit(message, properties=tags)
            clear_pending_tags(self._repo)
        new = Pointer(digest, pointer.branch, pointer.tracked)
        if update_head and pointer.tracked:
            write_pointer(self._root, new)
        if self._opt_depth:
            self._opt_pointer = new
            if self._opt_reader is not None:
                self._opt_reader.close()
                self._opt_reader = None
        return digest

    def checkout_branch(self, name: str) -> str:
        """Point head.stock at branch ``name``: its head if it exists, else a new branch started at the
        commit head.stock names now (to write on top of an older version). Returns the commit."""
        if self._opt_depth:
            raise RuntimeError('checkout_branch() changes head.stock: call it outside optimize()')
        if self._read_only:
            raise ReadOnlyError('this StockRoom is read-only; open StockRoom() to change its branch')
        pointer = self.pointer()
        if name == pointer.branch and self._repo.store.refs.branch_head(name) == pointer.commit:
            return pointer.commit
        staging = StagingArea(self._repo.store)
        if staging.is_dirty() and staging.info().branch == pointer.branch:
            raise StagingDirty(
                f'changes are staged on branch {pointer.branch!r}: commit them (stock.commit(msg)) or drop '
                'them (stock.get_hangar_checkout(write=True).reset_staging_area(force=True)) before '
                f'switching to {name!r}'
            )
        if pending_tags(self._repo, pointer.branch):
            raise StagingDirty(
                f'tags are set for the next commit on {pointer.branch!r}: commit them or delete them '
                f'(del stock.tag[key]) before switching to {name!r}'
            )
        head = self._repo.store.refs.branch_head(name)
        if head is None:
            if not pointer.commit:
                raise _ref_error(
                    name, f'nothing is committed yet, so branch {name!r} has no commit to start at'
                )
            head = self._repo.create_branch(name, base_commit=pointer.commit).digest
        write_pointer(self._root, Pointer(head, name))
        return head

    def reader(self) -> StockRoom:
        """A read-only copy that reads the commit this stock reads now, whatever head.stock says later;
        it pickles (hand it to DataLoader workers)."""
        copy = StockRoom(self._root, read_only=True)
        copy._pinned = self.pointer()
        return copy

    # ------------------------------------------------------------------ life cycle

    def close(self) -> None:
        """Close the checkouts this stock keeps (an optimize block's, a lent writer)."""
        self._opt_depth = 0
        self._close_optimized()
        if self._lent_writer is not None:
            self._lent_writer.close()
            self._lent_writer = None

    def __enter__(self) -> StockRoom:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        if not self._read_only:
            raise NotPicklable(
                'a writable StockRoom cannot be pickled (it may hold the repository writer); pass '
                'stock.reader() to DataLoader workers, or create StockRoom(path, read_only=True) there'
            )
        return {'root': str(self._root), 'pointer': self.pointer()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state['root'], read_only=True)  # type: ignore[misc]
        self._pinned = state['pointer']

    def __repr__(self) -> str:
        try:
            pointer = self.pointer()
            where = f'branch {pointer.branch!r} at {pointer.commit[:12] or "(no commit yet)"}'
        except (StockNotFound, RepositoryNotFound) as err:
            where = f'(unreadable: {err})'
        mode = 'read-only ' if self._read_only else ''
        return f'<{mode}StockRoom {self._root}: {where}>'
