"""The one small interface every backend implements, and the options every backend has.

A backend stores opaque byte strings (the C-order bytes of an array, the UTF-8 of a str) and returns
a *location* for each: ``bytes`` that start with the backend's two-character code (``codes.py``). It
knows nothing of columns, keys or commits. Every read verifies an xxhash checksum and raises
``ChecksumMismatch`` (or another ``CorruptData``) rather than return damaged bytes.

Each backend module defines a location type with ``parse_*``/``serialize_*`` functions (the bytes are
the on-disk format) and, where it takes options, a frozen options dataclass whose ``to_dict`` is what a
column's schema stores.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hangarfs.backends.codes import BackendCode
from hangarfs.errors import BackendError, CorruptData

if TYPE_CHECKING:
    from typing import Self

Buffer = bytes | bytearray | memoryview


def malformed_location(location: bytes, reason: str) -> CorruptData:
    """The error for a stored location that does not parse."""
    where = f'stored location {bytes(location).hex()}'
    return CorruptData(
        f'{where} is malformed ({reason}); the record that holds it is damaged '
        '(run `hangarfs verify` for a full report)',
        where=where,
    )


@dataclass(frozen=True)
class WriteResult:
    """What a batch write produced: one location per input blob, and the files it created."""

    locations: list[bytes]
    files: list[str] = field(default_factory=list)


class BackendOptions(abc.ABC):
    """A backend's validated, complete options: frozen, built from and turned back into a plain dict."""

    @classmethod
    @abc.abstractmethod
    def from_dict(cls, options: Mapping[str, Any] | None) -> Self:
        """Validate ``options`` (``None`` or ``{}``: all defaults); raise ``BackendError`` if wrong."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The complete options as a column's schema stores them (``from_dict`` reads them back)."""


@dataclass(frozen=True)
class NoOptions(BackendOptions):
    """The options of a backend that takes none."""

    backend_name: ClassVar[str] = 'this'

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None) -> Self:
        if options:
            raise BackendError(f'{cls.backend_name} backend takes no options, got {dict(options)!r} instead')
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return {}


class Backend(abc.ABC):
    """Stores byte strings and returns locations; see the module docstring."""

    code: ClassVar[BackendCode]
    name: ClassVar[str]
    options_type: ClassVar[type[BackendOptions]]
    #: True when the backend keeps data in collection files (so that the engine batches writes).
    uses_files: ClassVar[bool] = True

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)

    @classmethod
    def parse_options(cls, options: Mapping[str, Any] | None) -> BackendOptions:
        """Validated options, defaults filled in (raises ``BackendError``)."""
        return cls.options_type.from_dict(options)

    @classmethod
    def normalize_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Validate options and return them complete with defaults, as a schema stores them."""
        return cls.parse_options(options).to_dict()

    @classmethod
    def default_options(cls, sample_nbytes: int) -> dict[str, Any]:
        """The options a new column gets when none are given, for samples of up to this size."""
        return cls.normalize_options(None)

    @abc.abstractmethod
    def write_batch(
        self, blobs: Sequence[Buffer], *, options: Mapping[str, Any], typesize: int
    ) -> WriteResult:
        """Store every blob; ``typesize`` is the array item size, a hint for compression."""

    @abc.abstractmethod
    def read(self, location: bytes) -> bytes:
        """Return the stored bytes, verified against their checksum."""

    @abc.abstractmethod
    def nbytes(self, location: bytes) -> int:
        """Length of the stored bytes, without reading them."""

    def read_many(self, locations: Sequence[bytes]) -> list[bytes]:
        """``read`` of each location, in order (a backend that can share work across them overrides
        this: a push reads a whole column this way)."""
        return [self.read(loc) for loc in locations]

    def read_range(self, location: bytes, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of the stored value. Backends that can read less override this."""
        return self.read(location)[start:stop]

    def read_rows(self, locations: Sequence[bytes], out: np.ndarray) -> None:
        """The bulk read: fill row ``i`` of ``out`` (2-D uint8, C order) with the bytes of ``locations[i]``.

        Every value must be exactly one row long (``CorruptData`` otherwise); each is verified as
        :meth:`read` verifies it. Collection-file backends read each stored chunk once per call.
        """
        width = out.shape[1]
        for i, loc in enumerate(locations):
            data = self.read(loc)
            if len(data) != width:
                raise CorruptData(f'stored value holds {len(data)} bytes, expected {width}')
            out[i] = np.frombuffer(data, dtype=np.uint8)

    def files_of(self, location: bytes) -> list[str]:
        """Data files a location depends on (for verification and packing reports)."""
        return []

    def close(self) -> None:  # noqa: B027 (optional hook, most backends hold nothing)
        """Release open files and caches."""
