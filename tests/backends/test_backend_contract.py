"""The backend contract, written once and run against every backend (hdf5, numpy, lmdb).

A backend stores byte strings and hands back locations; whatever it is given, it returns the same
bytes, knows their length without reading them, reads any byte range, and never returns damaged
bytes. The hdf5 backend's files must also be standard HDF5: plain h5py with the blosc filter from
hdf5plugin reads them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hangarfs.backends import BACKEND_CLASSES, BackendSet, backend_code, backend_name
from hangarfs.backends.base import Backend, Buffer, WriteResult
from hangarfs.backends.hdf5 import BLOSC_FILTER_ID, Hdf5Backend, parse_hdf5_location
from hangarfs.backends.hdf5 import FORMAT as HDF5_FORMAT
from hangarfs.backends.lmdb_inline import LmdbBackend
from hangarfs.backends.numpy_files import NumpyBackend
from hangarfs.errors import BackendError, ChecksumMismatch, CorruptData
from tests.helpers import flip_byte

RNG = np.random.default_rng(99)
SIZES = [0, 1, 7, 100, 4096, 32 * 1024 - 1, 32 * 1024, 32 * 1024 + 1, 100_000, 1024 * 1024 + 3, 2_500_000]


def random_bytes(n: int) -> bytes:
    return RNG.integers(0, 256, n, dtype=np.uint8).tobytes()


def compressible_bytes(n: int) -> bytes:
    return (np.arange(n, dtype=np.int64) // 7).astype(np.uint8).tobytes()


class BackendContract:
    """Tests every backend must pass; a subclass names the backend class and its options."""

    backend_class: ClassVar[type[Backend]]
    options: ClassVar[Mapping[str, Any] | None] = None

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        b = self.backend_class(tmp_path / 'data')
        yield b
        b.close()

    def write(self, backend: Backend, blobs: Sequence[Buffer], typesize: int = 1) -> WriteResult:
        return backend.write_batch(
            blobs, options=self.backend_class.normalize_options(self.options), typesize=typesize
        )

    def corrupt(self, backend: Backend, location: bytes) -> bytes:
        """Damage the stored bytes of ``location`` (one flipped byte); return the location to read."""
        raise NotImplementedError

    # ------------------------------------------------------------------ round trips

    def test_many_sizes_in_one_batch(self, backend: Backend) -> None:
        blobs = [random_bytes(n) for n in SIZES]
        result = self.write(backend, blobs)
        assert len(result.locations) == len(blobs)
        for loc, blob in zip(result.locations, blobs):
            assert loc[:2] == self.backend_class.code.encode()
            assert backend.nbytes(loc) == len(blob)
            assert backend.read(loc) == blob

    def test_one_batch_per_size(self, backend: Backend) -> None:
        written = [(self.write(backend, [b]).locations[0], b) for b in map(compressible_bytes, SIZES)]
        for loc, blob in reversed(written):
            assert backend.read(loc) == blob

    def test_same_size_samples(self, backend: Backend) -> None:
        """The common case of a fixed-shape column: many samples of one size."""
        for size in (784, 4096, 50_000):
            blobs = [random_bytes(size) for _ in range(40)]
            locs = self.write(backend, blobs, typesize=4).locations
            assert [backend.read(loc) for loc in locs] == blobs

    def test_read_many_matches_read_in_any_order(self, backend: Backend) -> None:
        """The bulk read (a push reads whole columns with it): files, chunks, sizes mixed."""
        written: list[tuple[bytes, bytes]] = []
        for size in (784, 4096, 50_000, 3 << 20, 0):
            blobs = [random_bytes(size) for _ in range(25 if size < 1 << 20 else 2)]
            written += zip(self.write(backend, blobs, typesize=1).locations, blobs)
        order = np.random.default_rng(5).permutation(len(written))
        locations = [written[i][0] for i in order]
        assert backend.read_many(locations) == [written[i][1] for i in order]
        assert backend.read_many([]) == []

    def test_zero_length_values(self, backend: Backend) -> None:
        only_empty = self.write(backend, [b'', b''])
        assert [backend.read(loc) for loc in only_empty.locations] == [b'', b'']
        assert [backend.nbytes(loc) for loc in only_empty.locations] == [0, 0]
        mixed = self.write(backend, [b'', b'abc', b'', b'defg', b''])
        assert [backend.read(loc) for loc in mixed.locations] == [b'', b'abc', b'', b'defg', b'']
        assert backend.read_range(mixed.locations[0], 0, 10) == b''

    def test_any_buffer_is_accepted(self, backend: Backend) -> None:
        arr = np.arange(1000, dtype=np.float32)
        blobs: list[Buffer] = [b'bytes', bytearray(b'bytearray'), memoryview(b'memoryview'), memoryview(arr)]
        locs = self.write(backend, blobs, typesize=4).locations
        assert [backend.read(loc) for loc in locs] == [b'bytes', b'bytearray', b'memoryview', arr.tobytes()]
        (single,) = self.write(backend, [memoryview(arr)], typesize=4).locations
        assert backend.read(single) == arr.tobytes() and backend.nbytes(single) == arr.nbytes

    @pytest.mark.parametrize(
        ('start', 'stop'),
        [
            (0, 0),
            (0, 1),
            (5, 17),
            (32 * 1024 - 3, 32 * 1024 + 5),
            (0, 100_000),
            (99_990, 200_000),
            (500, 400),
        ],
    )
    def test_read_range(self, backend: Backend, start: int, stop: int) -> None:
        blob = random_bytes(100_000)
        (loc,) = self.write(backend, [blob]).locations
        assert backend.read_range(loc, start, stop) == blob[start:stop]

    def test_read_range_of_a_sample_inside_a_batch(self, backend: Backend) -> None:
        blobs = [random_bytes(70_000) for _ in range(5)]
        locs = self.write(backend, blobs).locations
        for loc, blob in zip(locs, blobs):
            for start, stop in ((0, 10), (33_000, 66_000), (69_000, 70_000), (69_999, 80_000)):
                assert backend.read_range(loc, start, stop) == blob[start:stop]

    def test_ranges_across_chunk_boundaries_of_a_large_sample(self, backend: Backend) -> None:
        blob = random_bytes(3 * 1024 * 1024 + 123)
        (loc,) = self.write(backend, [blob]).locations
        mib = 1024 * 1024
        for start, stop in (
            (mib - 7, mib + 9),
            (128, 2 * mib + 128),
            (0, len(blob)),
            (2 * mib - 1, len(blob)),
        ):
            assert backend.read_range(loc, start, stop) == blob[start:stop], (start, stop)

    def test_a_new_instance_reads_what_another_wrote(self, backend: Backend) -> None:
        """Written files are complete and named when write_batch returns (another process reads them)."""
        blobs = [random_bytes(n) for n in (10, 50_000, 1_500_000)]
        locs = self.write(backend, blobs).locations
        other = self.backend_class(backend.data_dir)
        try:
            assert [other.read(loc) for loc in locs] == blobs
        finally:
            other.close()
        assert [BackendSet(backend.data_dir).read(loc) for loc in locs] == blobs

    def test_written_files_are_named_and_nothing_temporary_is_left(self, backend: Backend) -> None:
        result = self.write(backend, [random_bytes(5000), b''])
        for path in result.files:
            assert Path(path).is_file()
        assert set(backend.files_of(result.locations[0])) <= set(result.files)
        assert backend.files_of(result.locations[1]) == []
        leftovers = [p for p in backend.data_dir.rglob('*') if p.is_file() and p.name.startswith('.')]
        assert not leftovers

    def test_batches_never_share_or_overwrite_files(self, backend: Backend) -> None:
        first = self.write(backend, [b'first batch' * 100])
        second = self.write(backend, [b'second batch' * 100])
        assert not set(first.files) & set(second.files)
        assert backend.read(first.locations[0]) == b'first batch' * 100

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # each example makes its own directory
            HealthCheck.differing_executors,  # the same contract test runs in every backend's class
        ],
    )
    @given(blobs=st.lists(st.binary(max_size=3000), max_size=12), typesize=st.sampled_from([1, 2, 4, 8]))
    def test_any_batch_round_trips(self, tmp_path: Path, blobs: list[bytes], typesize: int) -> None:
        backend = self.backend_class(Path(tempfile.mkdtemp(dir=tmp_path)))
        try:
            locs = self.write(backend, blobs, typesize=typesize).locations
            assert [backend.read(loc) for loc in locs] == blobs
            assert [backend.nbytes(loc) for loc in locs] == [len(b) for b in blobs]
        finally:
            backend.close()

    # ------------------------------------------------------------------ damage

    def test_a_flipped_byte_is_detected_not_returned(self, backend: Backend) -> None:
        blob = random_bytes(100_000)
        (loc,) = self.write(backend, [blob]).locations
        assert backend.read(loc) == blob
        damaged = self.corrupt(backend, loc)
        fresh = self.backend_class(backend.data_dir)  # no cached copy of the good bytes
        try:
            with pytest.raises(CorruptData) as info:
                fresh.read(damaged)
            assert isinstance(info.value, OSError)
            if isinstance(info.value, ChecksumMismatch):
                assert info.value.expected != info.value.got
                assert 'checksum mismatch' in str(info.value) and info.value.where
        finally:
            fresh.close()

    # ------------------------------------------------------------------ options and registry

    def test_options_normalize_to_complete_stable_values(self) -> None:
        opts = self.backend_class.normalize_options(self.options)
        assert self.backend_class.normalize_options(opts) == opts
        assert self.backend_class.normalize_options(None) == self.backend_class.normalize_options({})

    def test_unknown_options_are_refused(self) -> None:
        with pytest.raises(BackendError, match=self.backend_class.name):
            self.backend_class.normalize_options({'no_such_option': 1})

    def test_registered_by_code_and_name(self) -> None:
        cls = self.backend_class
        assert BACKEND_CLASSES[cls.code] is cls
        assert backend_code(cls.name) == cls.code and backend_code(cls.code) == cls.code
        assert backend_name(cls.code) == cls.name


class TestHdf5Backend(BackendContract):
    backend_class = Hdf5Backend

    def corrupt(self, backend: Backend, location: bytes) -> bytes:
        (path,) = backend.files_of(location)
        with h5py.File(path, 'r', locking=False) as f:
            chunk = f['heap'].id.get_chunk_info(f['heap'].id.get_num_chunks() - 1)
        flip_byte(Path(path), chunk.byte_offset + chunk.size // 2)
        return location

    def test_a_damaged_file_header_is_reported(self, backend: Backend) -> None:
        (loc,) = self.write(backend, [random_bytes(1000)]).locations
        (path,) = backend.files_of(loc)
        flip_byte(Path(path), 1)
        with pytest.raises(CorruptData, match='cannot be read as HDF5'):
            Hdf5Backend(backend.data_dir).read(loc)

    def test_a_missing_file_is_reported(self, backend: Backend) -> None:
        (loc,) = self.write(backend, [random_bytes(1000)]).locations
        Path(backend.files_of(loc)[0]).unlink()
        with pytest.raises(CorruptData, match='missing'):
            Hdf5Backend(backend.data_dir).read(loc)

    def test_a_range_read_touches_only_its_chunks(self, backend: Backend) -> None:
        blob = random_bytes(5 * 1024 * 1024)
        (loc,) = self.write(backend, [blob]).locations
        (path,) = backend.files_of(loc)
        with h5py.File(path, 'r', locking=False) as f:
            n_chunks = f['heap'].id.get_num_chunks()
            second = f['heap'].id.get_chunk_info(1)
        assert n_chunks == 5
        flip_byte(Path(path), second.byte_offset + 10)  # damage chunk 1 only
        fresh = Hdf5Backend(backend.data_dir)
        assert fresh.read_range(loc, 0, 4096) == blob[:4096]  # chunk 0
        assert fresh.read_range(loc, 3 * 2**20, 3 * 2**20 + 9) == blob[3 * 2**20 : 3 * 2**20 + 9]
        with pytest.raises(ChecksumMismatch, match='chunk 1'):
            fresh.read_range(loc, 2**20 + 5, 2**20 + 6)

    @pytest.mark.parametrize(
        'options',
        [
            {'complib': 'blosc:lz4', 'complevel': 9},
            {'complib': 'blosc:zlib', 'shuffle': 'bit'},
            {'complib': 'none'},
            {'complib': None, 'shuffle': None},
            {'shuffle': True},
            {'shuffle': False},
            {'complib': 'gzip', 'complevel': 9},
            {'complib': 'lzf', 'complevel': None, 'shuffle': 'byte'},
        ],
    )
    def test_accepted_options(self, options: dict[str, Any]) -> None:
        opts = Hdf5Backend.normalize_options(options)
        assert set(opts) == {'complib', 'complevel', 'shuffle'}
        assert opts['shuffle'] in ('none', 'byte', 'bit')
        if opts['complib'] == 'none':
            assert opts['complevel'] == 0

    @pytest.mark.parametrize(
        'options',
        [{'complib': 'gzip2'}, {'complevel': -1}, {'complevel': 10}, {'complevel': True}, {'shuffle': 'x'}],
    )
    def test_refused_options(self, options: dict[str, Any]) -> None:
        with pytest.raises(BackendError, match=r'expected .*, got .* instead'):
            Hdf5Backend.normalize_options(options)


class TestHdf5BackendUncompressed(TestHdf5Backend):
    options: ClassVar[Mapping[str, Any] | None] = {'complib': 'none'}


class TestHdf5BackendLz4BitShuffle(TestHdf5Backend):
    options: ClassVar[Mapping[str, Any] | None] = {'complib': 'blosc:lz4hc', 'complevel': 9, 'shuffle': 'bit'}


class TestHdf5BackendGzip(TestHdf5Backend):
    options: ClassVar[Mapping[str, Any] | None] = {'complib': 'gzip', 'complevel': 4}


class TestHdf5BackendLzf(TestHdf5Backend):
    options: ClassVar[Mapping[str, Any] | None] = {'complib': 'lzf', 'complevel': None, 'shuffle': 'byte'}


class TestNumpyBackend(BackendContract):
    backend_class = NumpyBackend

    def corrupt(self, backend: Backend, location: bytes) -> bytes:
        (path,) = backend.files_of(location)
        flip_byte(Path(path), Path(path).stat().st_size - 50_000)
        return location

    def test_files_are_valid_npy_files_of_the_batch(self, backend: Backend) -> None:
        blobs = [random_bytes(n) for n in (10, 0, 3000)]
        result = self.write(backend, blobs)
        (path,) = result.files
        assert np.load(path).tobytes() == b''.join(blobs)
        mapped = np.load(path, mmap_mode='r')
        assert mapped.dtype == np.uint8 and mapped.shape == (3010,)

    def test_a_truncated_file_is_reported(self, backend: Backend) -> None:
        (loc,) = self.write(backend, [random_bytes(10_000)]).locations
        (path,) = backend.files_of(loc)
        with open(path, 'r+b') as fh:
            fh.truncate(Path(path).stat().st_size - 1)
        with pytest.raises(CorruptData, match='holds'):
            NumpyBackend(backend.data_dir).read(loc)


class TestLmdbBackend(BackendContract):
    backend_class = LmdbBackend

    def corrupt(self, backend: Backend, location: bytes) -> bytes:
        damaged = bytearray(location)
        damaged[-1] ^= 0xFF
        return bytes(damaged)

    def test_values_live_in_the_location(self, backend: Backend) -> None:
        (loc,) = self.write(backend, [b'inline']).locations
        assert loc.endswith(b'inline') and backend.files_of(loc) == []
        assert not backend.data_dir.exists() or not any(backend.data_dir.iterdir())


def test_every_backend_implements_the_whole_interface(tmp_path: Path) -> None:
    class Incomplete(Backend):
        code = '99'
        name = 'incomplete'

        @classmethod
        def normalize_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
            return {}

    with pytest.raises(TypeError, match='abstract'):
        Incomplete(tmp_path)  # type: ignore[abstract]
    for cls in BACKEND_CLASSES.values():
        cls(tmp_path)


def test_the_remote_placeholder_cannot_be_written_to() -> None:
    with pytest.raises(BackendError):
        backend_code('remote')
    with pytest.raises(BackendError):
        backend_code('50')


# ---------------------------------------------------------------------------------------- standard HDF5


@pytest.mark.parametrize(
    'complib',
    ['blosc:zstd', 'blosc:lz4', 'blosc:lz4hc', 'blosc:blosclz', 'blosc:zlib', 'none', 'gzip', 'lzf'],
)
@pytest.mark.parametrize('shuffle', ['none', 'byte', 'bit'])
def test_hdf5_files_read_back_through_plain_h5py_and_hdf5plugin(
    tmp_path: Path, complib: str, shuffle: str
) -> None:
    import hdf5plugin  # noqa: F401 (registers the standard blosc filter with HDF5)

    if complib in ('gzip', 'lzf') and shuffle == 'bit':
        with pytest.raises(BackendError, match="shuffle 'bit' needs a blosc compressor"):
            Hdf5Backend.normalize_options({'complib': complib, 'shuffle': shuffle})
        return
    backend = Hdf5Backend(tmp_path)
    values = np.arange(300_000, dtype=np.float32) / 7  # compressible, with a typesize of 4
    blobs = [values[:1000].tobytes(), b'', values.tobytes(), random_bytes(77_777)]
    result = backend.write_batch(blobs, options={'complib': complib, 'shuffle': shuffle}, typesize=4)
    (path,) = result.files
    with h5py.File(path, 'r', locking=False) as f:
        heap = f['heap']
        assert heap.dtype == np.uint8 and heap.shape == (sum(map(len, blobs)),)
        plist = heap.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        h5py_filters = {'gzip': [h5py.h5z.FILTER_DEFLATE], 'lzf': [h5py.h5z.FILTER_LZF], 'none': []}
        assert filters == h5py_filters.get(complib, [BLOSC_FILTER_ID])
        assert heap[...].tobytes() == b''.join(blobs)  # decompressed by HDF5 and the plugin, not by us
        for loc, blob in zip(result.locations, blobs):
            _, offset, size = parse_hdf5_location(loc)
            assert heap[offset : offset + size].tobytes() == blob
        assert f.attrs['format'] == HDF5_FORMAT
    backend.close()


def test_a_repositorys_hdf5_files_are_standard_hdf5(tmp_path: Path) -> None:
    import hdf5plugin  # noqa: F401

    from tests.helpers import new_repository

    repo = new_repository(tmp_path / 'repo')
    images = RNG.integers(0, 256, (1500, 784), dtype=np.uint8)
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', prototype=images[0]).update_batch(range(1500), images)
        co.commit('images')
    files = list(Path(repo.path, '.hangarfs', 'data', '00').glob('*.h5'))
    assert files
    heap = b''
    for path in files:
        with h5py.File(path, 'r', locking=False) as f:
            heap += f['heap'][...].tobytes()
    stored = {heap[i : i + 784] for i in range(0, len(heap), 784)}
    assert all(row.tobytes() in stored for row in images)
