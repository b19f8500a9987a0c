"""hangarfs: version control for tensor data, with a filesystem front end.

from hangarfs import Repository
repo = Repository('/data/mnist-repo')
repo.init(user_name='Ada', user_email='ada@example.org')
co = repo.checkout(write=True)
"""

from hangarfs.engine.repository import BranchHead, Repository
from hangarfs.errors import (
    ChecksumMismatch,
    ClosedError,
    ColumnExists,
    ColumnNotFound,
    CorruptData,
    HangarfsError,
    IntegrityError,
    InvalidKey,
    MergeConflictError,
    NothingToCommit,
    ReadOnlyError,
    RefNotFound,
    RepositoryExists,
    RepositoryNotFound,
    SampleNotFound,
    SampleReadError,
    SchemaMismatch,
    WriterLockHeld,
)
from hangarfs.version import __version__

__all__ = [
    'BranchHead',
    'ChecksumMismatch',
    'ClosedError',
    'ColumnExists',
    'ColumnNotFound',
    'CorruptData',
    'HangarfsError',
    'IntegrityError',
    'InvalidKey',
    'MergeConflictError',
    'NothingToCommit',
    'ReadOnlyError',
    'RefNotFound',
    'Repository',
    'RepositoryExists',
    'RepositoryNotFound',
    'SampleNotFound',
    'SampleReadError',
    'SchemaMismatch',
    'WriterLockHeld',
    '__version__',
]
