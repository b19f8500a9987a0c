"""Backend code ``50``: a placeholder for data known to exist only on a remote.

The location (``RemoteLocation``) records which remote holds the bytes and their length: ``b'50'`` +
varint length + the remote's name in UTF-8. Reading raises ``DataNotLocal`` until the data is fetched,
which replaces the location with a local one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from hangarfs.backends.base import Backend, BackendOptions, Buffer, NoOptions, WriteResult, malformed_location
from hangarfs.backends.codec import decode_varint, encode_varint
from hangarfs.backends.codes import CODE_SIZE, BackendCode
from hangarfs.errors import BackendError, DataNotLocal


class RemoteLocation(NamedTuple):
    """``nbytes`` bytes that only the remote named ``remote`` holds."""

    remote: str
    nbytes: int


def parse_remote_location(location: bytes) -> RemoteLocation:
    try:
        if location[:CODE_SIZE] != BackendCode.REMOTE.prefix:
            raise ValueError('not a remote location')
        nbytes, pos = decode_varint(location, CODE_SIZE)
        return RemoteLocation(location[pos:].decode('utf-8'), nbytes)
    except (IndexError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise malformed_location(location, str(err) or 'cut short') from err


def serialize_remote_location(location: RemoteLocation) -> bytes:
    return BackendCode.REMOTE.prefix + encode_varint(location.nbytes) + location.remote.encode('utf-8')


def remote_location(remote: str, nbytes: int) -> bytes:
    return serialize_remote_location(RemoteLocation(remote, nbytes))


@dataclass(frozen=True)
class RemoteOptions(NoOptions):
    backend_name = 'remote'


class RemotePlaceholder(Backend):
    code = BackendCode.REMOTE
    name = 'remote'
    options_type = RemoteOptions
    uses_files = False

    @classmethod
    def parse_options(cls, options: Mapping[str, Any] | None) -> BackendOptions:
        raise BackendError('the remote placeholder is not a backend columns can write to')

    def write_batch(
        self, blobs: Sequence[Buffer], *, options: Mapping[str, Any], typesize: int
    ) -> WriteResult:
        raise BackendError('the remote placeholder cannot store data')

    def nbytes(self, location: bytes) -> int:
        return parse_remote_location(location).nbytes

    def read(self, location: bytes) -> bytes:
        remote = parse_remote_location(location).remote
        raise DataNotLocal(
            f'this sample is stored only on remote {remote!r}; fetch it first '
            f'(repo.remote.fetch_data({remote!r}, ...) or `hangarfs fetch-data {remote} REF`)',
            remote=remote,
        )
