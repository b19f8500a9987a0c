"""Where sample bytes live: one module per backend behind the ``Backend`` interface.

Each backend has a permanent two-character code (written into every location) and a readable name;
both are accepted wherever a backend is chosen.
"""

from __future__ import annotations

import threading
from pathlib import Path

from hangarfs.backends.base import Backend, Buffer, WriteResult
from hangarfs.backends.hdf5 import Hdf5Backend
from hangarfs.backends.lmdb_inline import LmdbBackend, inline_location
from hangarfs.backends.numpy_files import NumpyBackend
from hangarfs.backends.remote import RemotePlaceholder
from hangarfs.errors import BackendError

BACKEND_CLASSES: dict[str, type[Backend]] = {
    cls.code: cls for cls in (Hdf5Backend, NumpyBackend, LmdbBackend, RemotePlaceholder)
}
NAME_TO_CODE: dict[str, str] = {cls.name: code for code, cls in BACKEND_CLASSES.items()}
WRITABLE_CODES = ('00', '10', '30')


# Hangar 0.5's codes for layouts one hangarfs backend covers: '01' (HDF5, fixed shape) is hdf5 ('00'),
# '31' (LMDB, bytes) is lmdb ('30'). Accepted wherever a backend is chosen; columns report the real code.
HANGAR_CODE_ALIASES = {'01': '00', '31': '30'}


def backend_code(name_or_code: str) -> str:
    """Resolve a readable name ('hdf5') or a code ('00') to the code of a writable backend."""
    name_or_code = HANGAR_CODE_ALIASES.get(name_or_code, name_or_code)
    if name_or_code in WRITABLE_CODES:
        return name_or_code
    code = NAME_TO_CODE.get(name_or_code)
    if code in WRITABLE_CODES:
        return code
    choices = ', '.join(f"'{BACKEND_CLASSES[c].name}'/'{c}'" for c in WRITABLE_CODES)
    raise BackendError(f'expected a backend among {choices}, got {name_or_code!r} instead')


def backend_name(code: str) -> str:
    return BACKEND_CLASSES[code].name


class BackendSet:
    """One instance of every backend for a repository's data directory, created on first use."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._instances: dict[str, Backend] = {}
        self._lock = threading.Lock()

    def get(self, code: str) -> Backend:
        inst = self._instances.get(code)
        if inst is None:
            with self._lock:
                inst = self._instances.get(code)
                if inst is None:
                    cls = BACKEND_CLASSES.get(code)
                    if cls is None:
                        raise BackendError(f'unknown backend code {code!r} in a stored location')
                    inst = cls(self.data_dir)
                    self._instances[code] = inst
        return inst

    def for_location(self, location: bytes) -> Backend:
        return self.get(location[:2].decode('ascii'))

    def read(self, location: bytes) -> bytes:
        return self.get(location[:2].decode('ascii')).read(location)

    def close(self) -> None:
        with self._lock:
            for inst in self._instances.values():
                inst.close()
            self._instances.clear()


__all__ = [
    'BACKEND_CLASSES',
    'Backend',
    'BackendSet',
    'Buffer',
    'WriteResult',
    'backend_code',
    'backend_name',
    'inline_location',
]
