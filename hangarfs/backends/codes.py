"""Backend codes: the permanent two-character name of a backend, written at the start of every location.

A code is never reused or renumbered: locations written years ago name their backend with it. The
readable names (``hdf5``, ``numpy``, ...) belong to the backend classes; the codes live here so that
parsing a location needs nothing else.
"""

from __future__ import annotations

import sys
from enum import Enum

from hangarfs.errors import BackendError

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover (Python 3.10)

    class StrEnum(str, Enum):
        """``enum.StrEnum`` of Python 3.11: members are str and format as their value."""

        __str__ = str.__str__
        __format__ = str.__format__


#: How many bytes of a location name its backend.
CODE_SIZE = 2


class BackendCode(StrEnum):
    """A backend's permanent code. Members are ``str`` (``BackendCode.HDF5 == '00'``), so schemas and
    dictionaries that hold plain strings compare and look up equal."""

    HDF5 = '00'
    NUMPY = '10'
    LMDB = '30'
    REMOTE = '50'

    @property
    def prefix(self) -> bytes:
        """The bytes a location of this backend starts with."""
        return _PREFIXES[self]


_PREFIXES: dict[BackendCode, bytes] = {code: code.value.encode('ascii') for code in BackendCode}
_BY_PREFIX: dict[bytes, BackendCode] = {prefix: code for code, prefix in _PREFIXES.items()}


def parse_backend_code(location: bytes) -> BackendCode:
    """The code a stored location starts with; ``BackendError`` if it names no known backend."""
    code = _BY_PREFIX.get(bytes(location[:CODE_SIZE]))
    if code is None:
        raise BackendError(
            f'unknown backend code {bytes(location[:CODE_SIZE])!r} in a stored location; expected one of '
            f'{", ".join(c.value for c in BackendCode)} (was the repository written by a newer hangarfs?)'
        )
    return code
