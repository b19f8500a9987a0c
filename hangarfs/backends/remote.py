"""Backend code ``50``: a placeholder for data known to exist only on a remote.

The location records which remote holds the bytes and their length; reading raises ``DataNotLocal``
until the data is fetched, which replaces the location with a local one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hangarfs.backends.base import Backend, Buffer, WriteResult
from hangarfs.backends.codec import decode_varint, encode_varint
from hangarfs.errors import BackendError, DataNotLocal


def remote_location(remote: str, nbytes: int) -> bytes:
    return b'50' + encode_varint(nbytes) + remote.encode('utf-8')


class RemotePlaceholder(Backend):
    code = '50'
    name = 'remote'
    uses_files = False

    @classmethod
    def normalize_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        raise BackendError('the remote placeholder is not a backend columns can write to')

    def write_batch(
        self, blobs: Sequence[Buffer], *, options: Mapping[str, Any], typesize: int
    ) -> WriteResult:
        raise BackendError('the remote placeholder cannot store data')

    def nbytes(self, location: bytes) -> int:
        return decode_varint(location, 2)[0]

    def read(self, location: bytes) -> bytes:
        _, pos = decode_varint(location, 2)
        remote = location[pos:].decode('utf-8')
        raise DataNotLocal(f'this sample is stored only on remote {remote!r}; fetch it first')
