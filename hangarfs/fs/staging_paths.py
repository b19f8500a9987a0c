"""What a path written through the staging mount becomes, and the handle of a file being written.

A path names a sample file (``COLUMN/KEY.npy``, ``NESTED/KEY/SUBKEY.npy``), a column's
``.schema.json``, a metadata value (``.hangarfs/metadata/KEY``) or scratch space (dotfiles: the
temporary files of ``rsync`` and editors). :func:`decode_file` turns a written file's bytes into the
sample value its extension says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hangarfs.fs.names import EXTENSIONS
from hangarfs.fs.npy import NpyFormatError, parse_npy
from hangarfs.fs.writebuf import WriteBuffer


@dataclass(frozen=True)
class Target:
    """What a file written through the staging view becomes when it is closed."""

    kind: str  # 'sample', 'schema', 'meta' or 'scratch'
    column: str = ''
    key: Any = None
    subkey: Any = None  # nested columns: the subsample key
    file_kind: str = ''  # 'ndarray', 'str' or 'bytes', from the file's extension
    name: str = ''  # metadata key


@dataclass(eq=False)
class WriteHandle:
    """An open file being written; its bytes are staged when it is flushed (closed).

    One open file may be flushed several times (each ``close()`` of a duplicated descriptor flushes,
    as a shell redirect does), so what counts is its state at the *last* flush: a flush whose bytes
    are invalid puts back what the target held before this handle staged anything.
    """

    path: str
    target: Target
    buffer: WriteBuffer
    dirty: bool = False
    kept: bool = False  # the buffer became a scratch file's content
    before: Any = None  # what the target held before this handle first staged (see StagingView._held)
    staged: Any = None  # what this handle's last successful flush made the target hold
    failure: BaseException | None = None  # why the last flush staged nothing (logged at release)


KIND_OF_EXTENSION = {ext: kind for kind, ext in EXTENSIONS.items()}


def decode_file(data: bytes | memoryview, kind: str, path: str) -> Any:
    """The sample value a written file holds: an array (.npy), a str (UTF-8 .txt) or bytes (.bin)."""
    if kind == 'ndarray':
        return parse_npy(data)[1]
    if kind == 'str':
        try:
            return bytes(data).decode('utf-8')
        except UnicodeDecodeError as err:
            raise NpyFormatError(f'{path} is not UTF-8 text ({err.reason} at byte {err.start})') from err
    return bytes(data)
