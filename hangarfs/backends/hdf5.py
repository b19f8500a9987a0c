"""Backend ``hdf5`` (code ``00``): sealed HDF5 collection files, blosc-compressed chunks.

One file per written batch, ``data/00/<id>.h5``, holding:

- ``heap``: a 1-D uint8 dataset, the batch's byte strings end to end, chunked in ``chunk_bytes``
  pieces with the standard HDF5 blosc filter (id 32001) in its pipeline. We compress and decompress the
  chunks ourselves (HDF5 direct chunk I/O), so no HDF5 filter plugin is needed here, while any tool with
  the blosc plugin (``hdf5plugin``) reads the file as an ordinary compressed dataset. For Hangar's
  ``complib='gzip'`` and ``'lzf'`` the chunks go through h5py's own built-in filters instead (any HDF5
  tool reads those without a plugin); gzip chunks are decompressed here with zlib, lzf ones by h5py.
- ``chunk_xxh3``: the xxh3 checksum of every stored (compressed) chunk, checked on every chunk read.
- ``chunk_index``: each chunk's byte offset and stored size in the file, so that reads go straight to
  ``os.pread`` (no h5py call, no h5py lock, on the read path; the file is immutable).

A location (``Hdf5Location``) is ``b'00'`` + file id (8 bytes) + varint offset + varint length. A
read touches only the chunks its byte range overlaps, so the first 4 KiB of a 1 GiB sample costs one
chunk. Small samples of one size are laid out so that no sample straddles two chunks, in chunks of
about 8 KiB (a random read decompresses little); large samples use 1 MiB chunks. Decompressed chunks
are kept in a bounded LRU cache. blosc runs with the GIL released (python-blosc's
``set_releasegil``), so a multithreaded FUSE daemon keeps serving other requests while a chunk
decompresses. (Compressing chunks on a thread pool was
measured slower here: c-blosc then builds a context and its threads per call.)
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from hangarfs.backends import blosc_frames
from hangarfs.backends.base import Buffer, malformed_location
from hangarfs.backends.codec import checksum
from hangarfs.backends.codes import BackendCode
from hangarfs.backends.collection import (
    CollectionFileBackend,
    FileSpan,
    parse_span,
    serialize_span,
)
from hangarfs.backends.hdf5_options import (
    COMPRESSORS,
    DEFAULT_OPTIONS,
    LARGE_SAMPLE_OPTIONS,
    SHUFFLES,
    Hdf5Options,
)
from hangarfs.errors import ChecksumMismatch, CorruptData

if TYPE_CHECKING:
    pass


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
LARGE_SAMPLE_BYTES = 1 << 20
SMALL_CHUNK = 8 * 1024
LARGE_CHUNK = 1024 * 1024
FORMAT = 'hangarfs-hdf5-2'


# ---------------------------------------------------------------------------------------- locations


class Hdf5Location(NamedTuple):
    """Where a value lies: bytes ``[offset, offset + size)`` of the heap of file ``file_id``.

    (A named tuple rather than a frozen dataclass: it is built in half the time, and unpacks.)
    """

    file_id: bytes
    offset: int
    size: int


def parse_hdf5_location(location: bytes) -> Hdf5Location:
    """The parts of an hdf5 location (whose code the caller has checked); ``CorruptData`` if malformed."""
    return Hdf5Location._make(_split_location(location))


def _split_location(location: bytes) -> tuple[bytes, int, int]:
    """``parse_hdf5_location`` as a plain tuple, for the read path."""
    file_id, offset, size, end = parse_span(location)
    if end != len(location):
        raise malformed_location(location, f'{len(location) - end} bytes after its end')
    return file_id, offset, size


def serialize_hdf5_location(location: Hdf5Location) -> bytes:
    return serialize_span(BackendCode.HDF5, location.file_id, location.offset, location.size)


# ---------------------------------------------------------------------------------------- files


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


def _write_hdf5_file(
    path: Path, heap: memoryview, total: int, chunk: int, opts: Hdf5Options, typesize: int
) -> None:
    nchunks = -(-total // chunk)
    shuffle = SHUFFLES[opts.shuffle]

    def piece(i: int) -> memoryview:
        p = heap[i * chunk : (i + 1) * chunk]
        return p if len(p) == chunk else memoryview(bytes(p) + bytes(chunk - len(p)))

    def store(i: int) -> bytes:
        if not opts.compressed:
            return bytes(piece(i))
        stored: bytes = _blosc().compress(
            piece(i), typesize=typesize, clevel=opts.complevel, shuffle=shuffle, cname=opts.cname
        )
        return stored

    h5py = _h5py()
    if opts.h5py_filter:
        _write_filtered_file(h5py, path, heap, total, chunk, opts, typesize)
        return
    with h5py.File(path, 'w', locking=False) as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((chunk,))
        if opts.compressed:
            cd_values = (2, 2, typesize, chunk, opts.complevel, shuffle, COMPRESSORS[opts.cname])
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
        _finish_file(f, sums, index, chunk, opts, typesize)


def _write_filtered_file(
    h5py: Any, path: Path, heap: memoryview, total: int, chunk: int, opts: Hdf5Options, typesize: int
) -> None:
    """Write the heap through h5py's own gzip or lzf filter, then checksum the chunks as stored."""
    level = opts.complevel if opts.complib == 'gzip' else None
    with h5py.File(path, 'w', locking=False) as f:
        dset = f.create_dataset(
            'heap',
            data=np.frombuffer(heap, dtype=np.uint8, count=total),
            chunks=(chunk,),
            compression=opts.complib,
            compression_opts=level,
        )
        nchunks = -(-total // chunk)
        index = np.empty((nchunks, 2), dtype=np.uint64)
        _record_chunk_index(dset.id, chunk, index)
        f.flush()
        sums = np.empty(nchunks, dtype=np.uint64)
        with open(path, 'rb') as raw:
            for i, (offset, size) in enumerate(index.tolist()):
                sums[i] = checksum(os.pread(raw.fileno(), size, offset))
        _finish_file(f, sums, index, chunk, opts, typesize)


def _finish_file(
    f: Any, sums: np.ndarray, index: np.ndarray, chunk: int, opts: Hdf5Options, typesize: int
) -> None:
    f.create_dataset('chunk_xxh3', data=sums)
    f.create_dataset('chunk_index', data=index)
    f.attrs['format'] = FORMAT
    f.attrs['chunk_bytes'] = chunk
    f.attrs['compressed'] = opts.compressed
    f.attrs['typesize'] = typesize
    if opts.h5py_filter:
        f.attrs['filter'] = opts.complib  # absent: blosc when compressed (files before gzip/lzf)


class _OpenFile:
    """What reading a sealed file needs: its chunk layout, checksums, and a plain file descriptor."""

    __slots__ = (
        '__weakref__',
        'chunk_bytes',
        'compressed',
        'fd',
        'filter',
        'h5',
        'offsets',
        'path',
        'sizes',
        'sum_list',
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
                self.filter = str(f.attrs.get('filter', 'blosc' if self.compressed else 'none'))
            self.h5: Any = None  # an h5py file, opened for the first lzf chunk
            self.sum_list: list[int] = self.sums.tolist()
            self.offsets: list[int] = index[:, 0].tolist()
            self.sizes: list[int] = index[:, 1].tolist()
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as err:
            raise CorruptData(f'data file {path} is missing', where=str(path)) from err
        except (OSError, KeyError, ValueError, IndexError) as err:
            raise CorruptData(f'data file {path} cannot be read as HDF5: {err}', where=str(path)) from err
        weakref.finalize(self, os.close, self.fd)  # when no reader holds it any more

    def raw_chunk(self, idx: int) -> bytes:
        return os.pread(self.fd, self.sizes[idx], self.offsets[idx])

    def decode(self, raw: bytes, idx: int) -> bytes:
        """The chunk's bytes from its stored (checked) form."""
        if self.filter == 'blosc':
            data: bytes = blosc_frames.decompress(raw, _blosc().decompress)
            return data
        if self.filter == 'gzip':
            return zlib.decompress(raw)
        if self.filter == 'lzf':  # no lzf codec in Python here: h5py's filter decodes the chunk
            if self.h5 is None:
                self.h5 = _h5py().File(self.path, 'r', locking=False)
                weakref.finalize(self, self.h5.close)
            lo = idx * self.chunk_bytes
            part: bytes = self.h5['heap'][lo : min(lo + self.chunk_bytes, self.total)].tobytes()
            return part + bytes(self.chunk_bytes - len(part))
        if self.filter == 'none':
            return bytes(raw)
        raise ValueError(f'unknown chunk filter {self.filter!r}')


# ---------------------------------------------------------------------------------------- the backend


class Hdf5Backend(CollectionFileBackend[_OpenFile]):
    code = BackendCode.HDF5
    name = 'hdf5'
    options_type = Hdf5Options
    suffix = '.h5'

    def __init__(self, data_dir: Path, *, cache_bytes: int = 256 * 1024 * 1024, max_open: int = 64) -> None:
        super().__init__(data_dir, max_open=max_open)
        self._cache: OrderedDict[tuple[bytes, int], bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = cache_bytes
        self._lock = threading.Lock()

    @classmethod
    def default_options(cls, sample_nbytes: int) -> dict[str, Any]:
        return (LARGE_SAMPLE_OPTIONS if sample_nbytes >= LARGE_SAMPLE_BYTES else DEFAULT_OPTIONS).to_dict()

    # writing

    def _write_file(
        self,
        path: Path,
        blobs: Sequence[Buffer],
        sizes: Sequence[int],
        *,
        options: Mapping[str, Any],
        typesize: int,
    ) -> None:
        opts = Hdf5Options.from_dict(options)
        total = sum(sizes)
        # a chunk may not exceed the (fixed) dataset length, and a batch smaller than one chunk needs one
        chunk = min(_choose_chunk_bytes(sizes), total)
        heap = memoryview(blobs[0]).cast('B') if len(blobs) == 1 else memoryview(b''.join(blobs))
        _write_hdf5_file(path, heap, total, chunk, opts, max(1, min(int(typesize), 255)))

    # reading

    def _parse_location(self, location: bytes) -> FileSpan:
        return parse_hdf5_location(location)

    def _open_file(self, file_id: bytes) -> _OpenFile:
        return _OpenFile(self.file_path(file_id))

    def read(self, location: bytes) -> bytes:
        file_id, offset, size = _split_location(location)
        return self._read(file_id, offset, size)

    def read_many(self, locations: Sequence[bytes]) -> list[bytes]:
        """Many values, each chunk read and decompressed once for all the values it holds (in file
        and offset order; the chunks bypass the shared cache, which a bulk read would only churn)."""
        spans = [_split_location(loc) for loc in locations]
        out: list[bytes] = [b''] * len(spans)
        current: tuple[bytes, int] | None = None
        data = b''
        of_id: bytes | None = None
        for i in sorted(range(len(spans)), key=spans.__getitem__):
            file_id, offset, size = spans[i]
            if size == 0:
                continue
            if of_id != file_id:
                of, of_id = self.open_files.get(file_id), file_id
            c = of.chunk_bytes
            first = offset // c
            if offset + size > of.total:
                raise self._out_of_bounds(of.path, of.total, offset, size)
            if (offset + size - 1) // c != first:  # spans chunks: the ordinary path
                out[i] = self._read(file_id, offset, size)
                continue
            if current != (file_id, first):
                data = self._load_chunk(of, first)
                current = (file_id, first)
            base = offset - first * c
            out[i] = data[base : base + size]
        return out

    def read_range(self, location: bytes, start: int, stop: int) -> bytes:
        file_id, offset, size = _split_location(location)
        start = max(0, min(start, size))
        stop = max(start, min(stop, size))
        return self._read(file_id, offset + start, stop - start)

    def _read(self, file_id: bytes, offset: int, size: int) -> bytes:
        if size == 0:
            return b''
        of = self.open_files.get(file_id)
        if offset + size > of.total:
            raise self._out_of_bounds(of.path, of.total, offset, size)
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

    def _read_file_rows(
        self, file_id: bytes, offsets: np.ndarray, checks: np.ndarray, rows: np.ndarray, out: np.ndarray
    ) -> None:
        """Each stored chunk the rows touch is read, verified and decompressed once."""
        width = out.shape[1]
        of = self.open_files.get(file_id)
        ends = offsets + width
        if len(ends) and int(ends.max()) > of.total:
            bad = int(np.argmax(ends > of.total))
            raise self._out_of_bounds(of.path, of.total, int(offsets[bad]), width)
        c = of.chunk_bytes
        first = offsets // c
        inside = first == (ends - 1) // c
        for r, off in zip(rows[~inside].tolist(), offsets[~inside].tolist()):  # rows across chunks
            out[r] = np.frombuffer(self._read(file_id, off, width), dtype=np.uint8)
        if not inside.all():
            rows, offsets, first = rows[inside], offsets[inside], first[inside]
        order = np.argsort(first, kind='stable')
        chunks = first[order]
        starts = (offsets[order] - chunks * c).tolist()
        targets = rows[order].tolist()
        cuts = [0, *(np.flatnonzero(np.diff(chunks)) + 1).tolist(), len(order)]
        chunk_ids = chunks[cuts[:-1]].tolist() if len(order) else []
        for g, idx in enumerate(chunk_ids):
            data = np.frombuffer(self._chunk(of, file_id, idx), dtype=np.uint8)
            for j in range(cuts[g], cuts[g + 1]):
                s = starts[j]
                out[targets[j]] = data[s : s + width]

    def _chunk(self, of: _OpenFile, file_id: bytes, idx: int) -> bytes:
        key = (file_id, idx)
        cache = self._cache
        with self._lock:
            data = cache.get(key)
            if data is not None:
                cache.move_to_end(key)
                return data
        data = self._load_chunk(of, idx)
        with self._lock:
            if key not in cache:
                cache[key] = data
                self._cache_bytes += len(data)
                while self._cache_bytes > self._cache_limit and len(cache) > 1:
                    _, old = cache.popitem(last=False)
                    self._cache_bytes -= len(old)
        return data

    def _load_chunk(self, of: _OpenFile, idx: int) -> bytes:
        """Read, check and decompress one chunk (no cache)."""
        where = f'{of.path} chunk {idx}'
        try:
            raw = of.raw_chunk(idx)
        except (OSError, IndexError) as err:
            raise CorruptData(f'cannot read {where}: {err}', where=where) from err
        got = checksum(raw)
        sums = of.sum_list
        if idx >= len(sums) or got != sums[idx]:
            raise ChecksumMismatch(where, sums[idx] if idx < len(sums) else 0, got)
        try:
            data = of.decode(raw, idx)
        except Exception as err:
            raise CorruptData(f'cannot decompress {where}: {err}', where=where) from err
        if len(data) != of.chunk_bytes:
            raise CorruptData(f'{where} holds {len(data)} bytes, expected {of.chunk_bytes}', where=where)
        return data

    def close(self) -> None:
        super().close()  # descriptors close as their last readers let go
        with self._lock:
            self._cache.clear()
            self._cache_bytes = 0
