"""hangarfs: version control for tensor data, with a filesystem front end.

from hangarfs import Repository
repo = Repository('/data/mnist-repo')
repo.init(user_name='Ada', user_email='ada@example.org')
co = repo.checkout(write=True)

Train from a commit: make_torch_dataset, make_tf_dataset, make_numpy_dataset (hangarfs.loaders).
"""

from hangarfs.engine.repository import BranchHead, Repository
from hangarfs.errors import (
    ChecksumMismatch,
    ClosedError,
    ColumnExists,
    ColumnKeysMismatch,
    ColumnNotFound,
    CorruptData,
    DatasetError,
    HangarfsError,
    IntegrityError,
    InvalidKey,
    InvalidProperty,
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
from hangarfs.loaders import (
    BlockShuffle,
    common_keys,
    make_numpy_dataset,
    make_tensorflow_dataset,
    make_tf_dataset,
    make_torch_dataset,
)
from hangarfs.version import __version__

__all__ = [
    'BlockShuffle',
    'BranchHead',
    'ChecksumMismatch',
    'ClosedError',
    'ColumnExists',
    'ColumnKeysMismatch',
    'ColumnNotFound',
    'CorruptData',
    'DatasetError',
    'HangarfsError',
    'IntegrityError',
    'InvalidKey',
    'InvalidProperty',
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
    'common_keys',
    'make_numpy_dataset',
    'make_tensorflow_dataset',
    'make_tf_dataset',
    'make_torch_dataset',
]
