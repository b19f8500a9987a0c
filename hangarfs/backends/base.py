"""The one small interface every backend implements.

A backend stores opaque byte strings (the C-order bytes of an array, the UTF-8 of a str) and returns
a *location* for each: ``bytes`` that start with the backend's two-character code. It knows nothing of
columns, keys or commits. Every read verifies an xxhash checksum and raises ``ChecksumMismatch`` (or
another ``CorruptData``) rather than return damaged bytes.

Collection-file backends write *sealed* files: a batch is written to a temporary name, closed, and
renamed into place; a named data file is never modified again. That is what makes a writer killed at
any moment harmless (a half-written file never gets a name) and lets readers in other processes use
the files while a writer adds new ones.
"""

from __future__ import annotations

import abc
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class WriteResult:
    """What a batch write produced: one location per input blob, and the files it created."""

    locations: list[bytes]
    files: list[str] = field(default_factory=list)


class Backend(abc.ABC):
    """Stores byte strings and returns locations; see the module docstring."""

    code: ClassVar[str]
    name: ClassVar[str]
    #: True when the backend keeps data in collection files (so that the engine batches writes).
    uses_files: ClassVar[bool] = True

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)

    @classmethod
    @abc.abstractmethod
    def normalize_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Validate options and return them complete with defaults (raises BackendError)."""

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

    def read_range(self, location: bytes, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of the stored value. Backends that can read less override this."""
        return self.read(location)[start:stop]

    def files_of(self, location: bytes) -> list[str]:
        """Data files a location depends on (for verification and packing reports)."""
        return []

    def close(self) -> None:  # noqa: B027 (optional hook, most backends hold nothing)
        """Release open files and caches."""

    # helpers for collection-file backends

    def _new_file_id(self) -> bytes:
        return uuid.uuid4().bytes[:8]

    def _dir(self) -> Path:
        d = self.data_dir / self.code
        d.mkdir(parents=True, exist_ok=True)
        return d

    @staticmethod
    def _publish(tmp: Path, final: Path) -> None:
        """Give a fully written temporary file its final name (atomic on POSIX)."""
        os.replace(tmp, final)
