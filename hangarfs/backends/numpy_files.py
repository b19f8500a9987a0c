"""Backend ``numpy`` (code ``10``): sealed, uncompressed, memory-mapped collection files.

One file per written batch, ``data/10/<id>.npy``: a valid ``.npy`` file of a 1-D uint8 array holding
the batch's byte strings end to end. Reads slice a read-only memory map, the fastest path for small
fixed-shape samples. A location is ``b'10'`` + file id (8 bytes) + varint offset + varint length +
the xxh3 checksum of the sample's bytes (8 bytes), verified on every read.
"""

from __future__ import annotations

import mmap
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hangarfs.backends.base import Backend, Buffer, WriteResult
from hangarfs.backends.codec import checksum, decode_varint, encode_varint
from hangarfs.errors import BackendError, ChecksumMismatch, CorruptData


class _Mapped:
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


class NumpyBackend(Backend):
    code = '10'
    name = 'numpy'

    def __init__(self, data_dir: Path, *, max_open: int = 256) -> None:
        super().__init__(data_dir)
        self._maps: OrderedDict[bytes, _Mapped] = OrderedDict()
        self._max_open = max_open
        self._lock = threading.Lock()

    @classmethod
    def normalize_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        if options:
            raise BackendError(f'numpy backend takes no options, got {dict(options)!r} instead')
        return {}

    def write_batch(
        self, blobs: Sequence[Buffer], *, options: Mapping[str, Any], typesize: int
    ) -> WriteResult:
        sizes = [memoryview(b).nbytes for b in blobs]
        total = sum(sizes)
        sums = [checksum(b) for b in blobs]
        if total == 0:
            return WriteResult([b'10' + bytes(8) + b'\x00\x00' + s.to_bytes(8, 'little') for s in sums])
        file_id = self._new_file_id()
        folder = self._dir()
        tmp = folder / f'.{file_id.hex()}.tmp'
        final = folder / f'{file_id.hex()}.npy'
        try:
            with open(tmp, 'wb') as fh:
                header = {'descr': '|u1', 'fortran_order': False, 'shape': (total,)}
                np.lib.format.write_array_header_1_0(fh, header)
                for b in blobs:
                    fh.write(b)
            self._publish(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        locations = []
        offset = 0
        prefix = b'10' + file_id
        for size, s in zip(sizes, sums):
            locations.append(prefix + encode_varint(offset) + encode_varint(size) + s.to_bytes(8, 'little'))
            offset += size
        return WriteResult(locations, [str(final)])

    @staticmethod
    def _parse(location: bytes) -> tuple[bytes, int, int, int]:
        file_id = location[2:10]
        offset, pos = decode_varint(location, 10)
        size, pos = decode_varint(location, pos)
        return file_id, offset, size, int.from_bytes(location[pos : pos + 8], 'little')

    def nbytes(self, location: bytes) -> int:
        return self._parse(location)[2]

    def files_of(self, location: bytes) -> list[str]:
        file_id, _, size, _ = self._parse(location)
        return [str(self.data_dir / self.code / f'{file_id.hex()}.npy')] if size else []

    def read(self, location: bytes) -> bytes:
        file_id, offset, size, expected = self._parse(location)
        if size == 0:
            data = b''
        else:
            m = self._map(file_id)
            if offset + size > m.size:
                raise CorruptData(
                    f'data file {m.path} holds {m.size} bytes; '
                    f'a sample needs bytes {offset}..{offset + size}',
                    where=str(m.path),
                )
            start = m.data_start + offset
            data = m.map[start : start + size]
        got = checksum(data)
        if got != expected:
            where = f'{self.data_dir / self.code / (file_id.hex() + ".npy")} at offset {offset}'
            raise ChecksumMismatch(where, expected, got)
        return data

    def _map(self, file_id: bytes) -> _Mapped:
        with self._lock:
            m = self._maps.get(file_id)
            if m is not None:
                self._maps.move_to_end(file_id)
                return m
        m = _Mapped(self.data_dir / self.code / f'{file_id.hex()}.npy')
        with self._lock:
            self._maps[file_id] = m
            while len(self._maps) > self._max_open:
                # dropped, not closed: a reader in another thread may still be slicing it
                self._maps.popitem(last=False)
        return m

    def close(self) -> None:
        with self._lock:
            for m in self._maps.values():
                m.map.close()
            self._maps.clear()
