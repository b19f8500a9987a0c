"""Backend ``numpy`` (code ``10``): sealed, uncompressed, memory-mapped collection files.

One file per written batch, ``data/10/<id>.npy``: a valid ``.npy`` file of a 1-D uint8 array holding
the batch's byte strings end to end. Reads slice a read-only memory map, the fastest path for small
fixed-shape samples. A location (``NumpyLocation``) is ``b'10'`` + file id (8 bytes) + varint offset +
varint length + the xxh3 checksum of the sample's bytes (8 bytes, little-endian), verified on every
read.
"""

from __future__ import annotations

import mmap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from hangarfs.backends.base import Buffer, NoOptions, malformed_location
from hangarfs.backends.codec import CHECKSUM_SIZE, checksum
from hangarfs.backends.codes import BackendCode
from hangarfs.backends.collection import (
    CollectionFileBackend,
    FileSpan,
    parse_span,
    serialize_span,
)
from hangarfs.errors import ChecksumMismatch, CorruptData


class NumpyLocation(NamedTuple):
    """Bytes ``[offset, offset + size)`` of the array of file ``file_id``, and their xxh3 checksum."""

    file_id: bytes
    offset: int
    size: int
    checksum: int


def parse_numpy_location(location: bytes) -> NumpyLocation:
    """The parts of a numpy location (whose code the caller has checked); ``CorruptData`` if malformed."""
    return NumpyLocation._make(_split_location(location))


def _split_location(location: bytes) -> tuple[bytes, int, int, int]:
    """``parse_numpy_location`` as a plain tuple, for the read path."""
    file_id, offset, size, end = parse_span(location)
    if end + CHECKSUM_SIZE != len(location):
        raise malformed_location(
            location, f'{len(location) - end} bytes after its span, expected {CHECKSUM_SIZE}'
        )
    return file_id, offset, size, int.from_bytes(location[end:], 'little')


def serialize_numpy_location(location: NumpyLocation) -> bytes:
    span = serialize_span(BackendCode.NUMPY, location.file_id, location.offset, location.size)
    return span + location.checksum.to_bytes(CHECKSUM_SIZE, 'little')


@dataclass(frozen=True)
class NumpyOptions(NoOptions):
    backend_name = 'numpy'


class _Mapped:
    """A sealed ``.npy`` file mapped read-only: where its array starts, and its size."""

    __slots__ = ('data_start', 'map', 'path', 'size')

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with open(path, 'rb') as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    np.lib.format.read_array_header_1_0(fh)
                else:
                    np.lib.format.read_array_header_2_0(fh)
                self.data_start = fh.tell()
                self.map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError as err:
            raise CorruptData(f'data file {path} is missing', where=str(path)) from err
        except (OSError, ValueError) as err:
            raise CorruptData(
                f'data file {path} is not a readable .npy file: {err}', where=str(path)
            ) from err
        self.size = len(self.map) - self.data_start


class NumpyBackend(CollectionFileBackend[_Mapped]):
    code = BackendCode.NUMPY
    name = 'numpy'
    options_type = NumpyOptions
    suffix = '.npy'
    location_trailer = CHECKSUM_SIZE

    def __init__(self, data_dir: Path, *, max_open: int = 256) -> None:
        super().__init__(data_dir, max_open=max_open)

    def _write_file(
        self,
        path: Path,
        blobs: Sequence[Buffer],
        sizes: Sequence[int],
        *,
        options: Mapping[str, Any],
        typesize: int,
    ) -> None:
        NumpyOptions.from_dict(options)
        with open(path, 'wb') as fh:
            header = {'descr': '|u1', 'fortran_order': False, 'shape': (sum(sizes),)}
            np.lib.format.write_array_header_1_0(fh, header)
            for b in blobs:
                fh.write(b)

    def _locations(self, file_id: bytes, blobs: Sequence[Buffer], sizes: Sequence[int]) -> list[bytes]:
        spans = super()._locations(file_id, blobs, sizes)
        return [span + checksum(b).to_bytes(CHECKSUM_SIZE, 'little') for span, b in zip(spans, blobs)]

    def _parse_location(self, location: bytes) -> FileSpan:
        return parse_numpy_location(location)

    def _open_file(self, file_id: bytes) -> _Mapped:
        return _Mapped(self.file_path(file_id))

    def read(self, location: bytes) -> bytes:
        file_id, offset, size, expected = _split_location(location)
        if size == 0:
            data = b''
        else:
            m = self.open_files.get(file_id)
            if offset + size > m.size:
                raise self._out_of_bounds(m.path, m.size, offset, size)
            start = m.data_start + offset
            data = m.map[start : start + size]
        got = checksum(data)
        if got != expected:
            raise ChecksumMismatch(f'{self.file_path(file_id)} at offset {offset}', expected, got)
        return data

    def _read_file_rows(
        self, file_id: bytes, offsets: np.ndarray, checks: np.ndarray, rows: np.ndarray, out: np.ndarray
    ) -> None:
        width = out.shape[1]
        m = self.open_files.get(file_id)
        if len(offsets) and int(offsets.max()) + width > m.size:
            bad = int(np.argmax(offsets + width > m.size))
            raise self._out_of_bounds(m.path, m.size, int(offsets[bad]), width)
        heap = np.frombuffer(m.map, dtype=np.uint8, count=m.size, offset=m.data_start)
        try:
            if not (offsets % width).any():  # a file of equal samples end to end: one gather of rows
                out[rows] = heap[: m.size - m.size % width].reshape(-1, width)[offsets // width]
            else:
                for r, off in zip(rows.tolist(), offsets.tolist()):
                    out[r] = heap[off : off + width]
        finally:
            del heap  # no view of the map may outlive the call (the map is closed on close())
        got = np.fromiter((checksum(out[r]) for r in rows.tolist()), dtype=np.uint64, count=len(rows))
        bad_rows = np.flatnonzero(got != checks)
        if len(bad_rows):
            b = int(bad_rows[0])
            where = f'{self.file_path(file_id)} at offset {int(offsets[b])}'
            raise ChecksumMismatch(where, int(checks[b]), int(got[b]))

    def _release(self, open_file: _Mapped) -> None:
        open_file.map.close()
