"""Where sample bytes live: one module per backend behind the ``Backend`` interface.

Each backend has a permanent two-character code (``BackendCode``, written at the start of every
location) and a readable name; both are accepted wherever a backend is chosen. ``BACKEND_CLASSES`` is
the one table of them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from hangarfs.backends.base import Backend, BackendOptions, Buffer, NoOptions, WriteResult
from hangarfs.backends.codes import CODE_SIZE, BackendCode, parse_backend_code
from hangarfs.backends.hdf5 import Hdf5Backend, Hdf5Location
from hangarfs.backends.hdf5_options import Hdf5Options
from hangarfs.backends.lmdb_inline import InlineLocation, LmdbBackend, inline_location
from hangarfs.backends.numpy_files import NumpyBackend, NumpyLocation
from hangarfs.backends.remote import RemoteLocation, RemotePlaceholder
from hangarfs.errors import BackendError

BACKEND_CLASSES: Mapping[str, type[Backend]] = {
    cls.code: cls for cls in (Hdf5Backend, NumpyBackend, LmdbBackend, RemotePlaceholder)
}
NAME_TO_CODE: Mapping[str, BackendCode] = {cls.name: cls.code for cls in BACKEND_CLASSES.values()}
WRITABLE_CODES = (BackendCode.HDF5, BackendCode.NUMPY, BackendCode.LMDB)


# Hangar 0.5's codes for layouts one hangarfs backend covers: '01' (HDF5, fixed shape) is hdf5 ('00'),
# '31' (LMDB, bytes) is lmdb ('30'). Accepted wherever a backend is chosen; columns report the real code.
HANGAR_CODE_ALIASES = {'01': '00', '31': '30'}


def backend_code(name_or_code: str) -> BackendCode:
    """Resolve a readable name ('hdf5') or a code ('00') to the code of a writable backend."""
    name_or_code = HANGAR_CODE_ALIASES.get(name_or_code, name_or_code)
    for code in WRITABLE_CODES:
        if name_or_code == code:
            return code
    named = NAME_TO_CODE.get(name_or_code)
    if named is not None and named in WRITABLE_CODES:
        return named
    choices = ', '.join(f"'{BACKEND_CLASSES[c].name}'/'{c}'" for c in WRITABLE_CODES)
    raise BackendError(f'expected a backend among {choices}, got {name_or_code!r} instead')


def backend_name(code: str) -> str:
    return BACKEND_CLASSES[code].name


class BackendSet:
    """One instance of every backend for a repository's data directory, created on first use."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._by_prefix: dict[bytes, Backend] = {}  # keyed by the bytes a location starts with
        self._lock = threading.Lock()

    def get(self, code: str) -> Backend:
        """The backend of ``code`` ('00', ``BackendCode.HDF5``...); ``BackendError`` if there is none."""
        try:
            prefix = BackendCode(code).prefix
        except ValueError as err:
            raise BackendError(f'unknown backend code {code!r} in a stored location') from err
        return self._by_prefix.get(prefix) or self._create(BackendCode(code))

    def for_location(self, location: bytes) -> Backend:
        inst = self._by_prefix.get(location[:CODE_SIZE])
        return inst if inst is not None else self._create(parse_backend_code(location))

    def read(self, location: bytes) -> bytes:
        inst = self._by_prefix.get(location[:CODE_SIZE])  # (for_location, inlined: this is every read)
        if inst is None:
            inst = self._create(parse_backend_code(location))
        return inst.read(location)

    def read_many(self, locations: Sequence[bytes]) -> list[bytes]:
        """``read`` of many locations (any backends), in order; each backend reads its share at once."""
        by_prefix: dict[bytes, list[int]] = {}
        for i, loc in enumerate(locations):
            by_prefix.setdefault(bytes(loc[:CODE_SIZE]), []).append(i)
        out: list[bytes] = [b''] * len(locations)
        for rows in by_prefix.values():
            inst = self.for_location(locations[rows[0]])
            for i, data in zip(rows, inst.read_many([locations[i] for i in rows])):
                out[i] = data
        return out

    def _create(self, code: BackendCode) -> Backend:
        with self._lock:
            inst = self._by_prefix.get(code.prefix)
            if inst is None:
                inst = self._by_prefix[code.prefix] = BACKEND_CLASSES[code](self.data_dir)
            return inst

    def close(self) -> None:
        with self._lock:
            for inst in self._by_prefix.values():
                inst.close()
            self._by_prefix.clear()


__all__ = [
    'BACKEND_CLASSES',
    'Backend',
    'BackendCode',
    'BackendOptions',
    'BackendSet',
    'Buffer',
    'Hdf5Location',
    'Hdf5Options',
    'InlineLocation',
    'NoOptions',
    'NumpyLocation',
    'RemoteLocation',
    'WriteResult',
    'backend_code',
    'backend_name',
    'inline_location',
]
