"""What the collection-file backends (hdf5, numpy) share: sealed files, span locations, open files.

A collection-file backend writes each batch to one new file, ``data/<code>/<file id hex><suffix>``:
written under a temporary name, closed, and renamed into place; a named data file is never modified
again. That is what makes a writer killed at any moment harmless (a half-written file never gets a
name) and lets readers in other processes use the files while a writer adds new ones.

Their locations start the same way: the backend code, the 8-byte file id, the varint offset of the
sample in the file's byte heap and its varint length (a backend may append more, such as a checksum).
A batch of only empty values writes no file; its locations name the all-zero file id.
"""

from __future__ import annotations

import abc
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np

from hangarfs.backends.base import Backend, Buffer, WriteResult, malformed_location
from hangarfs.backends.codec import decode_varint, encode_varint
from hangarfs.backends.codes import CODE_SIZE, BackendCode
from hangarfs.errors import CorruptData

#: Bytes of a file id in a location (random, from a UUID4).
FILE_ID_SIZE = 8
#: The file id of locations that need no file (empty values).
NO_FILE = bytes(FILE_ID_SIZE)
_SPAN_START = CODE_SIZE + FILE_ID_SIZE

OpenT = TypeVar('OpenT')


class FileSpan(Protocol):
    """What every collection-file location has: the file, and where in its heap the value lies."""

    @property
    def file_id(self) -> bytes: ...

    @property
    def offset(self) -> int: ...

    @property
    def size(self) -> int: ...


def serialize_span(code: BackendCode, file_id: bytes, offset: int, size: int) -> bytes:
    """``code + file id + varint offset + varint size``: the common start of a collection location."""
    if len(file_id) != FILE_ID_SIZE:
        raise ValueError(f'expected a file id of {FILE_ID_SIZE} bytes, got {len(file_id)} instead')
    return code.prefix + file_id + encode_varint(offset) + encode_varint(size)


def serialize_spans(code: BackendCode, file_id: bytes, sizes: Sequence[int]) -> list[bytes]:
    """The span locations of values of ``sizes`` stored end to end from offset 0 in one file."""
    prefix = code.prefix + file_id
    encoded: dict[int, bytes] = {}  # the samples of a batch mostly share one size
    out = []
    offset = 0
    for size in sizes:
        enc = encoded.get(size)
        if enc is None:
            enc = encoded[size] = encode_varint(size)
        out.append(prefix + encode_varint(offset) + enc)
        offset += size
    return out


def parse_span(location: bytes) -> tuple[bytes, int, int, int]:
    """``(file id, offset, size, end)`` of a span location, ``end`` where the span's bytes stop."""
    try:
        offset, pos = decode_varint(location, _SPAN_START)
        size, pos = decode_varint(location, pos)
    except (IndexError, ValueError) as err:
        raise malformed_location(location, f'its span does not decode: {err or "cut short"}') from err
    return location[CODE_SIZE:_SPAN_START], offset, size, pos


@dataclass(frozen=True)
class SpanBatch:
    """Many locations of one collection-file backend, parsed into arrays (the bulk read path).

    Row ``i`` is bytes ``[offset[i], offset[i] + size[i])`` of file ``file_ids[file[i]]``; ``check[i]``
    is the location's own checksum where the backend stores one (numpy), else 0.
    """

    file_ids: tuple[bytes, ...]
    file: np.ndarray  # intp, index into file_ids
    offset: np.ndarray  # int64
    size: np.ndarray  # int64
    check: np.ndarray  # uint64

    def __len__(self) -> int:
        return len(self.offset)

    def take(self, rows: np.ndarray) -> SpanBatch:
        """The spans of ``rows`` (an index array), in that order."""
        return SpanBatch(self.file_ids, self.file[rows], self.offset[rows], self.size[rows], self.check[rows])

    def files(self) -> Iterator[tuple[bytes, np.ndarray]]:
        """(file id, the rows in it) for every file some row is in."""
        if len(self.file_ids) == 1:
            yield self.file_ids[0], np.arange(len(self.offset))
            return
        order = np.argsort(self.file, kind='stable')
        cuts = np.flatnonzero(np.diff(self.file[order])) + 1
        for part in np.split(order, cuts):
            if len(part):
                yield self.file_ids[int(self.file[part[0]])], part


_PARSE_ROWS = 1 << 16


def _parse_span_matrix(mat: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(offsets, sizes) of span locations, one a row of ``mat``, whose spans end at column ``end``;
    None if some row does not parse so."""
    m = len(mat)
    rows = np.arange(m)
    pos = np.full(m, _SPAN_START, dtype=np.int64)
    out = []
    for _ in range(2):
        value = np.zeros(m, dtype=np.uint64)
        done = np.zeros(m, dtype=bool)
        for j in range(10):
            if done.all():
                break
            if int(pos[~done].max()) >= end:
                return None
            b = mat[rows, np.minimum(pos, end - 1)]
            live = ~done
            value[live] |= (b[live] & 0x7F).astype(np.uint64) << np.uint64(7 * j)
            done |= b < 0x80
            pos[live] += 1
        if not done.all():
            return None
        out.append(value.astype(np.int64))
    if not (pos == end).all():
        return None
    return out[0], out[1]


class OpenFiles(Generic[OpenT]):
    """A bounded, thread-safe LRU of opened data files by file id.

    A file pushed out is dropped, not closed: a reader in another thread may still be using it. What
    an open file holds is released when its last reader lets go of it.
    """

    def __init__(self, open_file: Callable[[bytes], OpenT], max_open: int) -> None:
        self._open_file = open_file
        self._files: OrderedDict[bytes, OpenT] = OrderedDict()
        self._max_open = max_open
        self._lock = threading.Lock()

    def get(self, file_id: bytes) -> OpenT:
        """The open file of ``file_id``, opened now if it is not open."""
        with self._lock:
            f = self._files.get(file_id)
            if f is not None:
                self._files.move_to_end(file_id)
                return f
        f = self._open_file(file_id)  # outside the lock: opening reads the file's header
        with self._lock:
            existing = self._files.get(file_id)
            if existing is not None:
                return existing  # another thread opened it first; ours is released when collected
            self._files[file_id] = f
            while len(self._files) > self._max_open:
                self._files.popitem(last=False)
        return f

    def clear(self) -> list[OpenT]:
        """Forget every open file; return them."""
        with self._lock:
            files = list(self._files.values())
            self._files.clear()
        return files


class CollectionFileBackend(Backend, Generic[OpenT]):
    """A backend that writes each batch to one sealed file of the batch's values end to end.

    A subclass names its file ``suffix``, writes a file (``_write_file``), opens one for reading
    (``_open_file``), parses its locations (``_parse_location``) and reads; this base chooses file
    names, publishes files atomically, makes the locations of a batch and caches open files.
    """

    suffix: ClassVar[str]
    #: Bytes a location has after its span (a checksum, say), read by ``parse_spans`` as ``check``.
    location_trailer: ClassVar[int] = 0

    def __init__(self, data_dir: Path, *, max_open: int) -> None:
        super().__init__(data_dir)
        self.folder = self.data_dir / self.code.value
        #: ``open_files.get(file_id)``: a file opened for reading (``CorruptData`` if missing or damaged)
        self.open_files: OpenFiles[OpenT] = OpenFiles(self._open_file, max_open)

    def file_path(self, file_id: bytes) -> Path:
        return self.folder / f'{file_id.hex()}{self.suffix}'

    # -------------------------------------------------------------------------------------- writing

    def write_batch(
        self, blobs: Sequence[Buffer], *, options: Mapping[str, Any], typesize: int
    ) -> WriteResult:
        sizes = [memoryview(b).nbytes for b in blobs]
        if sum(sizes) == 0:
            return WriteResult(self._locations(NO_FILE, blobs, sizes))
        file_id = uuid.uuid4().bytes[:FILE_ID_SIZE]
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f'.{file_id.hex()}.tmp'
        final = self.file_path(file_id)
        try:
            self._write_file(tmp, blobs, sizes, options=options, typesize=typesize)
            os.replace(tmp, final)  # the name appears only once the file is complete (atomic on POSIX)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return WriteResult(self._locations(file_id, blobs, sizes), [str(final)])

    @abc.abstractmethod
    def _write_file(
        self,
        path: Path,
        blobs: Sequence[Buffer],
        sizes: Sequence[int],
        *,
        options: Mapping[str, Any],
        typesize: int,
    ) -> None:
        """Write the blobs (at least one byte in all) end to end into a new file at ``path``."""

    def _locations(self, file_id: bytes, blobs: Sequence[Buffer], sizes: Sequence[int]) -> list[bytes]:
        """The locations of a batch written to ``file_id``; a subclass may append to each."""
        return serialize_spans(self.code, file_id, sizes)

    # -------------------------------------------------------------------------------------- reading

    @abc.abstractmethod
    def _parse_location(self, location: bytes) -> FileSpan:
        """The backend's parsed location (``CorruptData`` if malformed)."""

    @abc.abstractmethod
    def _open_file(self, file_id: bytes) -> OpenT:
        """Open a sealed file for reading (``CorruptData`` if missing or unreadable)."""

    def nbytes(self, location: bytes) -> int:
        return self._parse_location(location).size

    # -------------------------------------------------------------------------------------- bulk reads

    def parse_spans(self, locations: Sequence[bytes]) -> SpanBatch:
        """Parse many locations of this backend at once (``CorruptData`` if one is malformed).

        Vectorised: locations of one length are parsed together as the rows of a byte matrix."""
        n = len(locations)
        file = np.empty(n, dtype=np.intp)
        offset = np.empty(n, dtype=np.int64)
        size = np.empty(n, dtype=np.int64)
        check = np.zeros(n, dtype=np.uint64)
        lens = np.fromiter(map(len, locations), dtype=np.int64, count=n)
        ids: list[np.ndarray] = []
        id_rows: list[np.ndarray] = []
        for length in np.unique(lens).tolist():
            rows = np.flatnonzero(lens == length)
            for s in range(0, len(rows), _PARSE_ROWS):
                part = rows[s : s + _PARSE_ROWS]
                mat = np.frombuffer(b''.join([locations[i] for i in part.tolist()]), dtype=np.uint8)
                mat = mat.reshape(len(part), length)
                parsed = _parse_span_matrix(mat, length - self.location_trailer)
                if parsed is None:  # something malformed: the per-location parser says what
                    for i in part.tolist():
                        self._parse_location(locations[i])
                    raise malformed_location(locations[int(part[0])], 'it does not parse')
                offset[part], size[part] = parsed
                if self.location_trailer:
                    check[part] = mat[:, length - self.location_trailer :].copy().view('<u8').reshape(-1)
                ids.append(mat[:, CODE_SIZE:_SPAN_START].copy().view(np.dtype((np.void, FILE_ID_SIZE))))
                id_rows.append(part)
        if n == 0:
            return SpanBatch((), file, offset, size, check)
        uniq, inverse = np.unique(np.concatenate(ids).reshape(-1), return_inverse=True)
        file[np.concatenate(id_rows)] = inverse.reshape(-1)
        return SpanBatch(tuple(bytes(u) for u in uniq), file, offset, size, check)

    def read_rows(self, locations: Sequence[bytes], out: np.ndarray) -> None:
        self.read_span_rows(self.parse_spans(locations), out)

    def read_span_rows(self, spans: SpanBatch, out: np.ndarray) -> None:
        """``read_rows`` from parsed spans: row ``i`` of ``out`` gets span ``i``, verified."""
        width = out.shape[1]
        bad = np.flatnonzero(spans.size != width)
        if len(bad):
            size = int(spans.size[bad[0]])
            raise CorruptData(f'stored value holds {size} bytes, expected {width}')
        if width == 0:
            return
        for file_id, rows in spans.files():
            if file_id == NO_FILE:
                raise CorruptData(f'a stored empty value where {width} bytes were expected')
            self._read_file_rows(file_id, spans.offset[rows], spans.check[rows], rows, out)

    @abc.abstractmethod
    def _read_file_rows(
        self, file_id: bytes, offsets: np.ndarray, checks: np.ndarray, rows: np.ndarray, out: np.ndarray
    ) -> None:
        """Fill ``out[rows[i]]`` with the row-long value at ``offsets[i]`` of file ``file_id``, verified."""

    def files_of(self, location: bytes) -> list[str]:
        span = self._parse_location(location)
        return [str(self.file_path(span.file_id))] if span.size else []

    @staticmethod
    def _out_of_bounds(path: Path, total: int, offset: int, size: int) -> CorruptData:
        return CorruptData(
            f'data file {path} holds {total} bytes, a sample needs bytes {offset}..{offset + size}',
            where=str(path),
        )

    def _release(self, open_file: OpenT) -> None:
        """Release what an open file holds, once no reader uses it any more (on ``close``)."""

    def close(self) -> None:
        for f in self.open_files.clear():
            self._release(f)
