"""Backend ``hdf5`` (code ``00``): sealed HDF5 collection files, blosc-compressed chunks.

One file per written batch, ``data/00/<id>.h5``, holding:

- ``heap``: a 1-D uint8 dataset, the batch's byte strings end to end, chunked in ``chunk_bytes``
  pieces with the standard HDF5 blosc filter (id 32001) in its pipeline. We compress and decompress the
  chunks ourselves (HDF5 direct chunk I/O), so no HDF5 filter plugin is needed here, while any tool with
  the blosc plugin (``hdf5plugin``) reads the file as an ordinary compressed dataset.
- ``chunk_xxh3``: the xxh3 checksum of every stored (compressed) chunk, checked on every chunk read.
- ``chunk_index``: each chunk's byte offset and stored size in the file, so that reads go straight to
  ``os.pread`` (no h5py call, no h5py lock, on the read path; the file is immutable).

A location is ``b'00'`` + file id (8 bytes) + varint offset + varint length. A read touches only the
chunks its byte range overlaps, so the first 4 KiB of a 1 GiB sample costs one chunk. Small samples of
one size are laid out so that no sample straddles two chunks, in chunks of about 8 KiB (a random read
decompresses little); large samples use 1 MiB chunks. Decompressed chunks are kept in a bounded LRU
cache. blosc runs with the GIL released (python-blosc's ``set_releasegil``), so a multithreaded FUSE
daemon keeps serving other requests while a chunk decompresses. (Compressing chunks on a thread pool was
measured slower here: c-blosc then builds a context and its threads per call.)
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hangarfs.backends.base import Backend, Buffer, WriteResult
from hangarfs.backends.codec import checksum, decode_varint, encode_varint
from hangarfs.errors import BackendError, ChecksumMismatch, CorruptData


# h5py and blosc take about a quarter of a second to import; a CLI command or a mount that never
# touches an HDF5 file should not pay for them, so they load on first use.
@functools.cache
def _h5py() -> Any:
    import h5py

    return h5py


@functools.cache
def _blosc() -> Any:
    import blosc

    blosc.set_releasegil(True)
    return blosc


BLOSC_FILTER_ID = 32001
_COMPRESSORS = {'blosclz': 0, 'lz4': 1, 'lz4hc': 2, 'zlib': 4, 'zstd': 5}
_SHUFFLES = {'none': 0, 'byte': 1, 'bit': 2}
DEFAULT_OPTIONS: dict[str, Any] = {'complib': 'blosc:zstd', 'complevel': 1, 'shuffle': 'byte'}
# large samples (volumes, embeddings) are bound by throughput: lz4 with bit shuffle compresses float
# data about as well as zstd-1 at ~8x its speed (measured: BENCHMARKS.md); small ones by size
LARGE_SAMPLE_OPTIONS: dict[str, Any] = {'complib': 'blosc:lz4', 'complevel': 5, 'shuffle': 'bit'}
LARGE_SAMPLE_BYTES = 1 << 20
SMALL_CHUNK = 8 * 1024
LARGE_CHUNK = 1024 * 1024
FORMAT = 'hangarfs-hdf5-2'


def _choose_chunk_bytes(sizes: Sequence[int]) -> int:
    """Chunks of ~8 KiB for small samples (rows never straddle chunks), 1 MiB for large ones."""
    first = sizes[0]
    if first and all(s == first for s in sizes) and first <= LARGE_CHUNK:
        return first * max(1, SMALL_CHUNK // first)
    return LARGE_CHUNK if max(sizes) > 2 * SMALL_CHUNK else SMALL_CHUNK


def _record_chunk_index(dset: Any, chunk: int, index: np.ndarray) -> None:
    """Fill ``index[i] = (byte offset, stored size)`` for every chunk, in one pass over HDF5's index."""

    def visit(info: Any) -> None:
        i = info.chunk_offset[0] // chunk
        index[i] = (info.byte_offset, info.size)

    if hasattr(dset, 'chunk_iter'):
        dset.chunk_iter(visit)
    else:  # older HDF5: look each chunk up by its coordinates (not by ordinal, which is linear)
        for i in range(len(index)):
            visit(dset.get_chunk_info_by_coord((i * chunk,)))


class _OpenFile:
    """What reading a sealed file needs: its chunk layout, checksums, and a plain file descriptor."""

    __slots__ = (
        '__weakref__',
        'chunk_bytes',
        'compressed',
        'fd',
        'offsets',
        'path',
        'sizes',
        'sums',
        'total',
    )

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with _h5py().File(path, 'r', locking=False) as f:
                if f.attrs.get('format') != FORMAT:
                    raise ValueError(f'format {f.attrs.get("format")!r}, expected {FORMAT!r}')
                self.total = int(f['heap'].shape[0])
                self.sums = np.asarray(f['chunk_xxh3'][...], dtype=np.uint64)
                index = np.asarray(f['chunk_index'][...], dtype=np.uint64)
                self.chunk_bytes = int(f.attrs['chunk_bytes'])
                self.compressed = bool(f.attrs['compressed'])
            self.offsets = index[:, 0].tolist()
            self.sizes = index[:, 1].tolist()
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as err:
            raise CorruptData(f'data file {path} is missing', where=str(path)) from err
        except (OSError, KeyError, ValueError, IndexError) as err:
            raise CorruptData(f'data file {path} cannot be read as HDF5: {err}', where=str(path)) from err
        weakref.finalize(self, os.close, self.fd)  # when no reader holds it any more

    def raw_chunk(self, idx: int) -> bytes:
        return os.pread(self.fd, self.sizes[idx], self.offsets[idx])


class Hdf5Backend(Backend):
    code = '00'
    name = 'hdf5'

    def __init__(self, data_dir: Path, *, cache_bytes: int = 256 * 1024 * 1024, max_open: int = 64) -> None:
        super().__init__(data_dir)
        self._cache: OrderedDict[tuple[bytes, int], bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = cache_bytes
        self._files: OrderedDict[bytes, _OpenFile] = OrderedDict()
        self._max_open = max_open
        self._lock = threading.Lock()

    # options

    @classmethod
    def normalize_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        opts = dict(DEFAULT_OPTIONS)
        for k, v in (options or {}).items():
            if k not in DEFAULT_OPTIONS:
                raise BackendError(
                    f'hdf5 backend: unknown option {k!r}; expected some of {", ".join(DEFAULT_OPTIONS)}'
                )
            opts[k] = v
        complib = opts['complib']
        if complib is None:
            complib = 'none'
        names = [f'blosc:{c}' for c in _COMPRESSORS]
        if complib != 'none' and complib not in names:
            raise BackendError(
                f'hdf5 backend: expected complib in {[*names, "none"]}, got {complib!r} instead'
            )
        level = opts['complevel']
        if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 9:
            raise BackendError(f'hdf5 backend: expected complevel an int from 0 to 9, got {level!r} instead')
        shuffle = opts['shuffle']
        if shuffle is None or shuffle is False:
            shuffle = 'none'
        if shuffle is True:
            shuffle = 'byte'
        if shuffle not in _SHUFFLES:
            raise BackendError(
                f'hdf5 backend: expected shuffle one of {list(_SHUFFLES)}, got {opts["shuffle"]!r} instead'
            )
        if complib == 'none':
            level = 0
        return {'complib': complib, 'complevel': level, 'shuffle': shuffle}

    @classmethod
    def default_options(cls, sample_nbytes: int) -> dict[str, Any]:
        if sample_nbytes >= LARGE_SAMPLE_BYTES:
            return cls.normalize_options(LARGE_SAMPLE_OPTIONS)
        return cls.normalize_options(None)

    # writing

    def write_batch(
        self, blobs: Sequence[Buffer], *, options: Mapping[str, Any], typesize: int
    ) -> WriteResult:
        sizes = [len(memoryview(b).cast('B')) if isinstance(b, memoryview) else len(b) for b in blobs]
        total = sum(sizes)
        if total == 0:
            return WriteResult([b'00' + bytes(8) + b'\x00\x00' for _ in blobs])
        opts = self.normalize_options(options)
        # a chunk may not exceed the (fixed) dataset length, and a batch smaller than one chunk needs one
        chunk = min(_choose_chunk_bytes(sizes), total)
        heap = memoryview(blobs[0]).cast('B') if len(blobs) == 1 else memoryview(b''.join(blobs))
        typesize = max(1, min(int(typesize), 255))
        file_id = self._new_file_id()
        folder = self._dir()
        tmp = folder / f'.{file_id.hex()}.tmp'
        final = folder / f'{file_id.hex()}.h5'
        try:
            self._write_file(tmp, heap, total, chunk, opts, typesize)
            self._publish(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        locations = []
        offset = 0
        prefix = b'00' + file_id
        size_bytes = {sizes[0]: encode_varint(sizes[0])}  # samples of a batch mostly share one size
        for size in sizes:
            enc = size_bytes.get(size)
            if enc is None:
                enc = size_bytes[size] = encode_varint(size)
            locations.append(prefix + encode_varint(offset) + enc)
            offset += size
        return WriteResult(locations, [str(final)])

    @staticmethod
    def _write_file(
        path: Path, heap: memoryview, total: int, chunk: int, opts: dict[str, Any], typesize: int
    ) -> None:
        compressed = opts['complib'] != 'none'
        nchunks = -(-total // chunk)
        cname = opts['complib'].split(':', 1)[1] if compressed else ''
        shuffle = _SHUFFLES[opts['shuffle']]

        def piece(i: int) -> memoryview:
            p = heap[i * chunk : (i + 1) * chunk]
            return p if len(p) == chunk else memoryview(bytes(p) + bytes(chunk - len(p)))

        def store(i: int) -> bytes:
            if not compressed:
                return bytes(piece(i))
            return _blosc().compress(
                piece(i), typesize=typesize, clevel=opts['complevel'], shuffle=shuffle, cname=cname
            )

        h5py = _h5py()
        with h5py.File(path, 'w', locking=False) as f:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk((chunk,))
            if compressed:
                cd_values = (2, 2, typesize, chunk, opts['complevel'], shuffle, _COMPRESSORS[cname])
                dcpl.set_filter(BLOSC_FILTER_ID, h5py.h5z.FLAG_OPTIONAL, cd_values)
            space = h5py.h5s.create_simple((total,), (total,))
            dset = h5py.h5d.create(f.id, b'heap', h5py.h5t.NATIVE_UINT8, space, dcpl=dcpl)
            sums = np.empty(nchunks, dtype=np.uint64)
            index = np.empty((nchunks, 2), dtype=np.uint64)
            for i in range(nchunks):
                stored = store(i)
                sums[i] = checksum(stored)
                dset.write_direct_chunk((i * chunk,), stored, 0)
            _record_chunk_index(dset, chunk, index)
            f.create_dataset('chunk_xxh3', data=sums)
            f.create_dataset('chunk_index', data=index)
            f.attrs['format'] = FORMAT
            f.attrs['chunk_bytes'] = chunk
            f.attrs['compressed'] = compressed
            f.attrs['typesize'] = typesize

    # reading

    @staticmethod
    def _parse(location: bytes) -> tuple[bytes, int, int]:
        file_id = location[2:10]
        offset, pos = decode_varint(location, 10)
        size, _ = decode_varint(location, pos)
        return file_id, offset, size

    def nbytes(self, location: bytes) -> int:
        return self._parse(location)[2]

    def files_of(self, location: bytes) -> list[str]:
        file_id, _, size = self._parse(location)
        return [str(self.data_dir / self.code / f'{file_id.hex()}.h5')] if size else []

    def read(self, location: bytes) -> bytes:
        file_id, offset, size = self._parse(location)
        return self._read(file_id, offset, size)

    def read_range(self, location: bytes, start: int, stop: int) -> bytes:
        file_id, offset, size = self._parse(location)
        start = max(0, min(start, size))
        stop = max(start, min(stop, size))
        return self._read(file_id, offset + start, stop - start)

    def _read(self, file_id: bytes, offset: int, size: int) -> bytes:
        if size == 0:
            return b''
        of = self._open(file_id)
        if offset + size > of.total:
            raise CorruptData(
                f'data file {of.path} holds {of.total} bytes, a sample needs bytes {offset}..{offset + size}',
                where=str(of.path),
            )
        c = of.chunk_bytes
        first, last = offset // c, (offset + size - 1) // c
        if first == last:
            base = first * c
            return self._chunk(of, file_id, first)[offset - base : offset - base + size]
        parts = []
        for idx in range(first, last + 1):
            data = memoryview(self._chunk(of, file_id, idx))  # views: the join is the only copy
            lo = max(offset, idx * c) - idx * c
            hi = min(offset + size, (idx + 1) * c) - idx * c
            parts.append(data[lo:hi])
        return b''.join(parts)

    def _open(self, file_id: bytes) -> _OpenFile:
        with self._lock:
            of = self._files.get(file_id)
            if of is not None:
                self._files.move_to_end(file_id)
                return of
        of = _OpenFile(self.data_dir / self.code / f'{file_id.hex()}.h5')
        with self._lock:
            existing = self._files.get(file_id)
            if existing is not None:
                return existing  # ours is closed when collected
            self._files[file_id] = of
            while len(self._files) > self._max_open:
                # dropped, not closed: another thread may be reading it; its fd closes when unused
                self._files.popitem(last=False)
        return of

    def _chunk(self, of: _OpenFile, file_id: bytes, idx: int) -> bytes:
        key = (file_id, idx)
        with self._lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
                return data
        where = f'{of.path} chunk {idx}'
        try:
            raw = of.raw_chunk(idx)
        except (OSError, IndexError) as err:
            raise CorruptData(f'cannot read {where}: {err}', where=where) from err
        got = checksum(raw)
        if idx >= len(of.sums) or got != int(of.sums[idx]):
            raise ChecksumMismatch(where, int(of.sums[idx]) if idx < len(of.sums) else 0, got)
        if of.compressed:
            try:
                data = _blosc().decompress(raw)
            except Exception as err:
                raise CorruptData(f'cannot decompress {where}: {err}', where=where) from err
        else:
            data = bytes(raw)
        if len(data) != of.chunk_bytes:
            raise CorruptData(f'{where} holds {len(data)} bytes, expected {of.chunk_bytes}', where=where)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = data
                self._cache_bytes += len(data)
                while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
                    _, old = self._cache.popitem(last=False)
                    self._cache_bytes -= len(old)
        return data

    def close(self) -> None:
        with self._lock:
            self._files.clear()  # descriptors close as their last readers let go
            self._cache.clear()
            self._cache_bytes = 0
