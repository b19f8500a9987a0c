"""Every exception hangarfs raises, in one place (those of remotes beside it, in ``errors_remote``).

Each class says what went wrong in its message and carries the facts as attributes. Where the meaning
matches a builtin, the class inherits it too, so ``except KeyError`` and friends keep working. Code
written for Hangar 0.5 catches the builtins Hangar raises; the classes carry those too, beside their
own (a use of a closed checkout is a ``ClosedError``, and also the ``PermissionError`` Hangar raises):

======================================  =====================================================
Hangar 0.5 raises                       hangarfs raises (its builtin bases)
======================================  =====================================================
ValueError / KeyError: unknown ref      RefNotFound (KeyError, ValueError)
LookupError: column exists              ColumnExists (ValueError, LookupError)
PermissionError: closed checkout        ClosedError (PermissionError, RuntimeError)
PermissionError / TypeError: read-only  ReadOnlyError (PermissionError, TypeError)
RuntimeError: branch not merged         BranchNotMerged (BranchInUse: PermissionError; RuntimeError)
RuntimeError: no commits yet            NoCommitsYet (RefNotFound; RuntimeError)
RuntimeError: repository not init'ed    RepositoryNotFound (FileNotFoundError, RuntimeError)
RuntimeError: staging area unchanged    NothingToCommit (RuntimeError)
ValueError: changes staged              StagingDirty (RuntimeError, ValueError)
======================================  =====================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class HangarfsError(Exception):
    """Base class of all hangarfs errors."""


class RepositoryNotFound(HangarfsError, FileNotFoundError, RuntimeError):
    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f'no hangarfs repository at {path}: create one with '
            f'Repository({path!r}).init(user_name=..., user_email=...) or `hangarfs -C {path} init`'
        )


class RepositoryExists(HangarfsError, FileExistsError):
    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f'a hangarfs repository already exists at {path}; to replace it, pass remove_old=True '
            '(or `hangarfs init --remove-old`): this deletes all its history and data'
        )


class RepositoryFormatError(HangarfsError):
    """The on-disk store is from an unknown format version or is damaged."""


class InvalidKey(HangarfsError, ValueError):
    """A sample key, column name or metadata key that is not allowed."""


class UnhashableKey(HangarfsError, TypeError):
    """A lookup by a value that cannot be a key and is not even hashable (a list, an array)."""

    def __init__(self, column: str, key: Any) -> None:
        self.column = column
        self.key = key
        shown = repr(key) if len(repr(key)) <= 60 else repr(key)[:57] + '...'
        super().__init__(
            f'column {column!r}: a {type(key).__name__} ({shown}) cannot be a key; keys are non-negative '
            'ints or str. To read many samples use col.get_batch(keys) or co[[(column, k) for k in keys]]'
        )


class ColumnExists(HangarfsError, ValueError, LookupError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f'column {name!r} already exists; pick another name or delete it first')


class ColumnNotFound(HangarfsError, KeyError):
    def __init__(self, name: str, available: Sequence[str] = ()) -> None:
        self.name = name
        hint = f'; columns here: {", ".join(sorted(available))}' if available else '; there are no columns'
        super().__init__(f'no column named {name!r}{hint}')

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class SampleNotFound(HangarfsError, KeyError):
    def __init__(self, column: str, key: Any, why: str = '') -> None:
        self.column = column
        self.key = key
        super().__init__(f'column {column!r} has no sample with key {key!r}' + (f' ({why})' if why else ''))

    def __str__(self) -> str:
        return str(self.args[0])


class SchemaMismatch(HangarfsError, ValueError):
    """A value whose type, dtype or shape does not fit the column's schema."""

    def __init__(self, column: str, what: str, expected: Any, got: Any, hint: str = '') -> None:
        self.column = column
        self.expected = expected
        self.got = got
        msg = f'column {column!r}: expected {what} {expected}, got {got} instead'
        super().__init__(msg + (f'; {hint}' if hint else ''))


class ReadOnlyError(HangarfsError, PermissionError, TypeError):
    """A write through a read-only checkout or view (Hangar: PermissionError, or the TypeError of an
    object without ``__setitem__``)."""


class ClosedError(HangarfsError, PermissionError, RuntimeError):
    """Use of a checkout (or column of one) after close() (Hangar: PermissionError)."""


class WriterLockHeld(HangarfsError, PermissionError):
    """Another writer holds the repository's writer lock."""

    def __init__(self, path: str, holder: dict[str, Any] | None) -> None:
        self.path = path
        self.holder = holder or {}
        if holder:
            who = f'pid {holder.get("pid")} on {holder.get("host")} since {holder.get("since")}'
            if holder.get('mountpoint'):
                who += f' (staging mount at {holder["mountpoint"]})'
            elif holder.get('command'):
                who += f' ({holder["command"]})'
        else:
            who = 'another process'
        super().__init__(
            f'the repository at {path} has a writer already: {who}. Close that writer checkout '
            '(or unmount the staging mount) first; any number of read-only checkouts can be open meanwhile'
        )


class NothingToCommit(HangarfsError, RuntimeError):
    def __init__(self, branch: str) -> None:
        self.branch = branch
        super().__init__(f'nothing staged on branch {branch!r}: there is nothing to commit')


class NothingStaged(HangarfsError, RuntimeError):
    """An operation that needs staged changes found none (``reset_staging_area`` with nothing to reset)."""


class StagingDirty(HangarfsError, RuntimeError, ValueError):
    """An operation that needs a clean staging area found staged changes."""


class RefNotFound(HangarfsError, KeyError, ValueError):
    def __init__(self, ref: str, kind: str = 'branch, tag or commit', *, message: str = '') -> None:
        self.ref = ref
        super().__init__(message or f'no {kind} named {ref!r}')

    def __str__(self) -> str:
        return str(self.args[0])


class NoCommitsYet(RefNotFound, RuntimeError):
    """The repository (or branch) has no commits, so there is nothing to read, branch or tag."""

    def __init__(self, ref: str, consequence: str) -> None:
        """``consequence``: what the missing commit means here (it follows "has no commits yet, ")."""
        super().__init__(ref)
        where = f'branch {ref!r}' if ref else 'the repository'
        self.args = (f'{where} has no commits yet, {consequence}; commit first',)


class AmbiguousRef(HangarfsError, ValueError):
    def __init__(self, ref: str, candidates: Sequence[str]) -> None:
        self.ref = ref
        self.candidates = list(candidates)
        shown = ', '.join(c[:16] for c in self.candidates[:5])
        super().__init__(f'{ref!r} is a prefix of several commits ({shown}); give more characters')


class BranchExists(HangarfsError, ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f'branch {name!r} exists already')


class TagExists(HangarfsError, ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f'tag {name!r} exists already; tags never move, delete it first to reuse the name')


class BranchInUse(HangarfsError, PermissionError):
    """Deleting a branch that a writer has checked out, or the last branch."""


class PickleRefused(HangarfsError, PermissionError):
    """Pickling a column of a write checkout: only read-only columns travel to other processes."""


class ColumnInUse(HangarfsError, PermissionError, RuntimeError):
    """Removing a column, or changing its backend, inside a ``with`` block (as Hangar refuses: a
    PermissionError for the one, a RuntimeError for the other)."""


class BranchNotMerged(BranchInUse, RuntimeError):
    """Deleting a branch whose commits no other branch contains (without force_delete=True)."""


class RefMoved(HangarfsError, RuntimeError):
    """A compare-and-swap update of a ref found another value than expected."""

    def __init__(self, ref: str, expected: str | None, found: str | None) -> None:
        self.ref = ref
        self.expected = expected
        self.found = found
        super().__init__(
            f'{ref} moved while this operation ran (expected {expected}, found {found}); nothing was changed'
        )


class CorruptData(HangarfsError, OSError):
    """Stored bytes that fail their checksum, or a data file that cannot be read."""

    def __init__(self, message: str, *, where: str = '', expected: Any = None, got: Any = None) -> None:
        self.where = where
        self.expected = expected
        self.got = got
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class ChecksumMismatch(CorruptData):
    def __init__(self, where: str, expected: int, got: int) -> None:
        super().__init__(
            f'checksum mismatch in {where}: expected {expected:016x}, got {got:016x}; the stored bytes '
            'are damaged (run `hangarfs verify` for a full report)',
            where=where,
            expected=expected,
            got=got,
        )


class SampleReadError(CorruptData):
    """A sample whose stored bytes could not be read back intact; names the column and key."""

    def __init__(self, column: str, key: Any, cause: BaseException) -> None:
        self.column = column
        self.key = key
        super().__init__(f'column {column!r}, key {key!r}: {cause}', where=getattr(cause, 'where', ''))


class DataNotLocal(HangarfsError, LookupError):
    """Sample data that exists only on a remote and has not been fetched.

    ``remote`` names the remote that holds it; ``column``, ``key`` and ``commit`` say which sample,
    when the reader knows (``sample_not_local`` builds the message that says how to fetch it).
    """

    def __init__(
        self, message: str, *, remote: str = '', column: str = '', key: Any = None, commit: str = ''
    ) -> None:
        self.remote = remote
        self.column = column
        self.key = key
        self.commit = commit
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


def sample_not_local(remote: str, column: str, key: Any, commit: str) -> DataNotLocal:
    """The error for reading a sample whose bytes only ``remote`` holds: what to run to fetch it."""
    ref = commit[:12] if commit else 'REF'
    return DataNotLocal(
        f'column {column!r}, key {key!r} is stored only on remote {remote!r}: fetch it with '
        f'repo.remote.fetch_data_sample({remote!r}, column={column!r}, samples=[{key!r}], commit={ref!r}), '
        f'or the whole column with `hangarfs fetch-data {remote} {ref} -c {column}`; or read it through a '
        f'lazy mount: `hangarfs mount REPO MOUNTPOINT --ref {ref} --lazy`',
        remote=remote,
        column=column,
        key=key,
        commit=commit,
    )


class IntegrityError(HangarfsError):
    """verify_repo_integrity() found problems; `.report` lists them."""

    def __init__(self, report: Any) -> None:
        self.report = report
        problems = report.problems
        head = '; '.join(problems[:3])
        more = f' (and {len(problems) - 3} more)' if len(problems) > 3 else ''
        super().__init__(f'repository integrity check failed with {len(problems)} problem(s): {head}{more}')


class MergeConflictError(HangarfsError, ValueError):
    """A three-way merge found changes on both sides that disagree; `.conflicts` lists them."""

    def __init__(self, conflicts: Sequence[Any], master: str, dev: str) -> None:
        self.conflicts = list(conflicts)
        self.master = master
        self.dev = dev
        shown = '; '.join(str(c) for c in self.conflicts[:5])
        more = f' (and {len(self.conflicts) - 5} more)' if len(self.conflicts) > 5 else ''
        super().__init__(
            f'merging {dev!r} into {master!r} found {len(self.conflicts)} conflict(s): {shown}{more}. '
            "Nothing was changed; resolve them on a branch, or pass strategy='ours' or 'theirs'"
        )


class MergeError(HangarfsError, ValueError):
    """A merge that cannot be made as asked: a branch into itself, a ref without commits."""


class BackendError(HangarfsError, ValueError):
    """An unknown backend or invalid backend options."""


class InvalidProperty(HangarfsError, TypeError):
    """A commit property (a key/value pair recorded on a commit) that cannot be stored."""


class StockNotFound(HangarfsError, FileNotFoundError):
    """No stock root (a directory with head.stock, .git or a hangarfs repository) where one was looked for."""


class StockBehindBranch(HangarfsError, PermissionError):
    """A write on a stock whose head.stock is not the head of its branch (an older code version)."""

    def __init__(self, pointer_commit: str, branch: str, branch_head: str) -> None:
        self.pointer_commit = pointer_commit
        self.branch = branch
        self.branch_head = branch_head
        here = pointer_commit[:12] or '(no commit yet)'
        super().__init__(
            f'head.stock points at commit {here} of branch {branch!r}, but that branch has moved on to '
            f'{branch_head[:12] or "(no commit)"}, so this is an older version of the code (after `git '
            f'checkout` of an older commit, say). A write now would build on {branch_head[:12]}, not on what '
            f'this version reads, so it is refused. To work from {here}, start a branch there: '
            f"stock.checkout_branch('retrain') (shell: `stock checkout-branch retrain`), then write and "
            f'commit. To continue {branch!r} instead, check out the code version whose head.stock points at '
            f'{branch_head[:12]}.'
        )


class ModelMismatch(HangarfsError, ValueError):
    """Stored model weights that do not fit the model they are loaded into (names, shapes, dtypes)."""


class NotPicklable(HangarfsError, TypeError):
    """An object that refuses to be pickled (a writable StockRoom), with what to pickle instead."""


class FrameworkVersionWarning(UserWarning):
    """A model saved with another version of its framework than the one installed."""


class DatasetError(HangarfsError, ValueError):
    """Columns, keys or options a dataloader cannot use (a writer checkout, a nested column, bad field
    names, an empty selection...)."""


class ColumnKeysMismatch(DatasetError, KeyError):
    """The columns of a dataset do not all hold the keys it should read (``.column``, ``.missing``)."""

    def __init__(self, column: str, missing: Sequence[Any], total: int, what: str, hint: str) -> None:
        self.column = column
        self.missing = list(missing)
        shown = ', '.join(repr(k) for k in self.missing[:5])
        more = f' and {len(self.missing) - 5} more' if len(self.missing) > 5 else ''
        lacks = f'column {column!r} lacks {len(self.missing):,} of the {total:,} keys {what}'
        super().__init__(f'{lacks} ({shown}{more}); {hint}')

    def __str__(self) -> str:
        return str(self.args[0])
