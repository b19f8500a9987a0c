"""Backend ``lmdb`` (code ``30``): values kept inline in the repository's LMDB book-keeping.

For str, bytes and tiny arrays, where a separate file would cost more than the value. The location
*is* the value (``InlineLocation``): ``b'30'`` + xxh3 checksum (8 bytes, little-endian) + the bytes,
so reading needs no other lookup. The engine also uses this form as its write buffer for small batches
of any column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from hangarfs.backends.base import Backend, Buffer, NoOptions, WriteResult, malformed_location
from hangarfs.backends.codec import CHECKSUM_SIZE, checksum
from hangarfs.backends.codes import CODE_SIZE, BackendCode
from hangarfs.errors import ChecksumMismatch

PREFIX = BackendCode.LMDB.prefix
_DATA_START = CODE_SIZE + CHECKSUM_SIZE


class InlineLocation(NamedTuple):
    """A value and the checksum it was stored with."""

    checksum: int
    data: bytes


def parse_inline_location(location: bytes) -> InlineLocation:
    """The parts of an inline location (whose code the caller has checked); ``CorruptData`` if malformed."""
    return InlineLocation._make(_split_location(location))


def _split_location(location: bytes) -> tuple[int, bytes]:
    """``parse_inline_location`` as a plain tuple, for the read path."""
    if len(location) < _DATA_START:
        raise malformed_location(location, 'shorter than its checksum')
    return int.from_bytes(location[CODE_SIZE:_DATA_START], 'little'), location[_DATA_START:]


def serialize_inline_location(location: InlineLocation) -> bytes:
    return PREFIX + location.checksum.to_bytes(CHECKSUM_SIZE, 'little') + location.data


def inline_location(blob: Buffer) -> bytes:
    """The location that stores ``blob`` inline."""
    data = bytes(blob)
    return PREFIX + checksum(data).to_bytes(CHECKSUM_SIZE, 'little') + data


@dataclass(frozen=True)
class LmdbOptions(NoOptions):
    backend_name = 'lmdb'


class LmdbBackend(Backend):
    code = BackendCode.LMDB
    name = 'lmdb'
    options_type = LmdbOptions
    uses_files = False

    def write_batch(
        self, blobs: Sequence[Buffer], *, options: Mapping[str, Any], typesize: int
    ) -> WriteResult:
        return WriteResult([inline_location(b) for b in blobs])

    def nbytes(self, location: bytes) -> int:
        return len(location) - _DATA_START

    def read(self, location: bytes) -> bytes:
        expected, data = _split_location(location)
        got = checksum(data)
        if got != expected:
            raise ChecksumMismatch('an inline LMDB value', expected, got)
        return data
