"""The options of the ``hdf5`` backend: which compressor, at which level, with which shuffle.

blosc compressors are applied by hangarfs itself (HDF5 direct chunk I/O, the standard blosc filter id
in the pipeline); ``gzip`` and ``lzf`` are h5py's built-in filters, taken for code written for Hangar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hangarfs.backends.base import BackendOptions
from hangarfs.errors import BackendError

if TYPE_CHECKING:
    from typing import Self

COMPRESSORS = {'blosclz': 0, 'lz4': 1, 'lz4hc': 2, 'zlib': 4, 'zstd': 5}  # blosc's compressor codes
_H5PY_FILTERS = ('gzip', 'lzf')  # h5py's built-in filters, as Hangar 0.5 offers them
_COMPLIBS = [*(f'blosc:{c}' for c in COMPRESSORS), *_H5PY_FILTERS]
SHUFFLES = {'none': 0, 'byte': 1, 'bit': 2}


def _complib(value: Any) -> str:
    complib = 'none' if value is None else value
    if complib != 'none' and complib not in _COMPLIBS:
        raise BackendError(f'hdf5 backend: expected complib in {[*_COMPLIBS, "none"]}, got {value!r} instead')
    return str(complib)


def _complevel(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 9:
        raise BackendError(f'hdf5 backend: expected complevel an int from 0 to 9, got {value!r} instead')
    return value


def _shuffle(value: Any) -> str:
    if value is None or value is False:
        return 'none'
    if value is True:
        return 'byte'
    if not isinstance(value, str) or value not in SHUFFLES:
        raise BackendError(f'hdf5 backend: expected shuffle one of {list(SHUFFLES)}, got {value!r} instead')
    return value


@dataclass(frozen=True)
class Hdf5Options(BackendOptions):
    """How chunks are compressed: a blosc compressor (or ``'none'``, level 0), its level, its shuffle.

    ``from_dict`` also accepts ``complib=None`` (no compression), ``shuffle`` as None, False or True
    (none, none, byte), and any level without compression (stored as 0); the dataclass itself holds
    only canonical values.

    ``'gzip'`` (levels 0-9) and ``'lzf'`` (no levels: stored as 0) are h5py's built-in filters, taken
    for code written for Hangar. HDF5's shuffle filter works on the stored dataset's element size, which
    is one byte here, so with them a ``'byte'`` shuffle would change nothing: it is recorded as
    ``'none'``, and ``'bit'`` (a blosc feature) is refused.
    """

    complib: str = 'blosc:zstd'
    complevel: int = 1
    shuffle: str = 'byte'

    def __post_init__(self) -> None:
        canonical = (_complib(self.complib), _complevel(self.complevel), _shuffle(self.shuffle))
        if canonical != (self.complib, self.complevel, self.shuffle):
            raise BackendError(f'hdf5 backend: expected canonical options, got {self!r} instead')
        if not self.compressed and self.complevel != 0:
            raise BackendError(
                f'hdf5 backend: expected complevel 0 without compression, got {self.complevel}'
            )
        if self.h5py_filter and self.shuffle != 'none':
            raise BackendError(f'hdf5 backend: expected no shuffle with {self.complib}, got {self.shuffle!r}')
        if self.complib == 'lzf' and self.complevel != 0:
            raise BackendError(f'hdf5 backend: lzf has no levels, expected complevel 0, got {self.complevel}')

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None) -> Self:
        given = dict(options or {})
        for k in given:
            if k not in _OPTION_NAMES:
                raise BackendError(
                    f'hdf5 backend: unknown option {k!r}; expected some of {", ".join(_OPTION_NAMES)}'
                )
        complib = _complib(given.get('complib', cls.complib))
        if complib == 'lzf' and given.get('complevel') is None:
            given['complevel'] = 0  # Hangar writes lzf's (absent) level as None
        level = _complevel(given.get('complevel', cls.complevel))
        shuffle = _shuffle(given.get('shuffle', cls.shuffle))
        if complib in _H5PY_FILTERS:
            if shuffle == 'bit':
                raise BackendError(
                    f"hdf5 backend: shuffle 'bit' needs a blosc compressor, not {complib!r}; "
                    "use complib='blosc:zstd' (or another blosc:*), or shuffle 'byte' or None"
                )
            shuffle = 'none'  # HDF5's byte shuffle of a byte heap is the identity
        return cls(complib, level if complib not in ('none', 'lzf') else 0, shuffle)

    def to_dict(self) -> dict[str, Any]:
        return {'complib': self.complib, 'complevel': self.complevel, 'shuffle': self.shuffle}

    @property
    def compressed(self) -> bool:
        return self.complib != 'none'

    @property
    def h5py_filter(self) -> bool:
        """True for gzip and lzf, the chunks h5py compresses and (for lzf) decompresses."""
        return self.complib in _H5PY_FILTERS

    @property
    def cname(self) -> str:
        """The blosc compressor name ('' without compression)."""
        return self.complib.split(':', 1)[1] if self.compressed else ''


_OPTION_NAMES = ('complib', 'complevel', 'shuffle')


DEFAULT_OPTIONS = Hdf5Options()
# large samples (volumes, embeddings) are bound by throughput: lz4 with bit shuffle compresses float
# data about as well as zstd-1 at ~8x its speed (measured: BENCHMARKS.md); small ones by size
LARGE_SAMPLE_OPTIONS = Hdf5Options(complib='blosc:lz4', complevel=5, shuffle='bit')
