"""Backend ``lmdb`` (code ``30``): values kept inline in the repository's LMDB book-keeping.

For str, bytes and tiny arrays, where a separate file would cost more than the value. The location
*is* the value: ``b'30'`` + xxh3 checksum (8 bytes) + the bytes, so reading needs no other lookup.
The engine also uses this form as its write buffer for small batches of any column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hangarfs.backends.base import Backend, Buffer, WriteResult
from hangarfs.backends.codec import checksum
from hangarfs.errors import BackendError, ChecksumMismatch

PREFIX = b'30'


def inline_location(blob: Buffer) -> bytes:
    data = bytes(blob)
    return PREFIX + checksum(data).to_bytes(8, 'little') + data


class LmdbBackend(Backend):
    code = '30'
    name = 'lmdb'
    uses_files = False

    @classmethod
    def normalize_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        if options:
            raise BackendError(f'lmdb backend takes no options, got {dict(options)!r} instead')
        return {}

    def write_batch(
        self, blobs: Sequence[Buffer], *, options: Mapping[str, Any], typesize: int
    ) -> WriteResult:
        return WriteResult([inline_location(b) for b in blobs])

    def nbytes(self, location: bytes) -> int:
        return len(location) - 10

    def read(self, location: bytes) -> bytes:
        data = location[10:]
        expected = int.from_bytes(location[2:10], 'little')
        got = checksum(data)
        if got != expected:
            raise ChecksumMismatch('an inline LMDB value', expected, got)
        return data
