"""The errno each hangarfs error becomes at the filesystem boundary (shared by both FUSE adapters)."""

from __future__ import annotations

import errno

from hangarfs.errors import (
    ClosedError,
    CorruptData,
    DataNotLocal,
    InvalidKey,
    ReadOnlyError,
    RefNotFound,
    SampleNotFound,
    SchemaMismatch,
    WriterLockHeld,
)
from hangarfs.fs.npy import NpyFormatError

# hangarfs errors -> errno; anything not listed is logged and becomes EIO
ERRNO_TABLE: list[tuple[type[BaseException], int]] = [
    (SampleNotFound, errno.ENOENT),
    (RefNotFound, errno.ENOENT),
    (ReadOnlyError, errno.EROFS),
    (WriterLockHeld, errno.EBUSY),
    (InvalidKey, errno.EINVAL),
    (SchemaMismatch, errno.EINVAL),
    (NpyFormatError, errno.EINVAL),
    (DataNotLocal, errno.EIO),
    (CorruptData, errno.EIO),
    (ClosedError, errno.EIO),
]


def errno_for(err: BaseException) -> int:
    """The errno a caller sees for ``err``: from the table, an OSError's own, or EIO."""
    for cls, code in ERRNO_TABLE:
        if isinstance(err, cls):
            return code
    if isinstance(err, OSError) and err.errno:
        return err.errno
    return errno.EIO
