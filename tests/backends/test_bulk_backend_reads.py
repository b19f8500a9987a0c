"""The backends' bulk reads: blosc frames decoded without python-blosc, parsed location batches, rows.

``blosc_frames.decompress`` must give exactly what python-blosc gives for every frame (it decodes the
common ones itself and hands the rest over); ``parse_spans`` must agree with the one-location parser
and refuse what it refuses; ``read_rows`` must give what ``read`` gives, verified the same way.
"""

from __future__ import annotations

from pathlib import Path

import blosc
import numpy as np
import pytest

from hangarfs.backends import BackendSet
from hangarfs.backends.blosc_frames import decompress, fast_decodable
from hangarfs.backends.codes import BackendCode
from hangarfs.backends.collection import serialize_span
from hangarfs.backends.hdf5 import Hdf5Backend, parse_hdf5_location
from hangarfs.backends.numpy_files import (
    NumpyBackend,
    NumpyLocation,
    parse_numpy_location,
    serialize_numpy_location,
)
from hangarfs.errors import ChecksumMismatch, CorruptData


def sample_buffers() -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for n in (0, 1, 7, 127, 7_840, 8_192, 65_537, 300_001):
        noisy = rng.integers(0, 256, n, dtype=np.uint8)
        sparse = noisy.copy()
        sparse[sparse < 140] = 0
        out += [noisy.tobytes(), sparse.tobytes(), bytes(n), (np.arange(n) // 7).astype(np.uint8).tobytes()]
    return out


@pytest.mark.parametrize('cname', ['zstd', 'lz4', 'blosclz', 'zlib'])
@pytest.mark.parametrize('typesize', [1, 2, 4, 8, 3])
@pytest.mark.parametrize('shuffle', [0, 1, 2])
def test_blosc_frames_decode_as_python_blosc_does(cname: str, typesize: int, shuffle: int) -> None:
    decoded_here = 0
    for data in sample_buffers():
        for clevel in (0, 1, 5):
            frame = blosc.compress(data, typesize=typesize, clevel=clevel, shuffle=shuffle, cname=cname)
            assert decompress(frame, blosc.decompress) == data
            decoded_here += fast_decodable(frame)
    if cname == 'zstd' and shuffle != 2:
        assert decoded_here > 0  # the default chunks (zstd, byte shuffle) do not go to python-blosc


def test_damaged_blosc_frames_are_refused() -> None:
    data = (np.arange(7_840) % 13).astype(np.uint8).tobytes()
    frame = blosc.compress(data, typesize=1, clevel=1, shuffle=1, cname='zstd')
    assert fast_decodable(frame)
    for bad in (frame[:-5], frame[:20], frame[:16] + bytes(len(frame) - 16)):
        with pytest.raises(Exception):  # noqa: B017 (zstandard's or our ValueError; the backend wraps it)
            assert decompress(bad, blosc.decompress) != data


def test_parse_spans_agrees_with_the_one_location_parsers(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    fids = [bytes(rng.integers(0, 256, 8, dtype=np.uint8)) for _ in range(3)]
    nums = [0, 1, 127, 128, 16_383, 16_384, 784, 2**35, 2**63 - 1]
    locs = [
        serialize_span(BackendCode.HDF5, fids[i % 3], nums[i % 9], nums[(i * 5 + 2) % 9]) for i in range(500)
    ]
    spans = Hdf5Backend(tmp_path).parse_spans(locs)
    for i, loc in enumerate(locs):
        p = parse_hdf5_location(loc)
        assert (spans.file_ids[spans.file[i]], spans.offset[i], spans.size[i]) == (
            p.file_id,
            p.offset,
            p.size,
        )
    nlocs = [
        serialize_numpy_location(
            NumpyLocation(fids[i % 2], nums[i % 9], nums[(i + 4) % 9], int(rng.integers(2**63)))
        )
        for i in range(300)
    ]
    nspans = NumpyBackend(tmp_path).parse_spans(nlocs)
    for i, loc in enumerate(nlocs):
        assert (
            nspans.file_ids[nspans.file[i]],
            int(nspans.offset[i]),
            int(nspans.size[i]),
            int(nspans.check[i]),
        ) == tuple(parse_numpy_location(loc))
    for bad in (locs[3] + b'\x01', locs[4][:11], locs[5][:10] + b'\x80\x80', locs[6][:10] + b'\x80' * 11):
        with pytest.raises(CorruptData, match='malformed'):
            Hdf5Backend(tmp_path).parse_spans([*locs[:5], bad])


@pytest.mark.parametrize('code', [BackendCode.HDF5, BackendCode.NUMPY, BackendCode.LMDB])
def test_read_rows_is_read_for_many(tmp_path: Path, code: BackendCode) -> None:
    backends = BackendSet(tmp_path / 'data')
    backend = backends.get(code)
    rng = np.random.default_rng(2)
    blobs = [rng.integers(0, 9, 300, dtype=np.uint8).tobytes() for _ in range(5_000)]
    locs = []
    for part in range(0, 5_000, 2_500):  # two files
        locs += backend.write_batch(blobs[part : part + 2_500], options={}, typesize=1).locations
    order = rng.integers(0, 5_000, 3_000)
    out = np.empty((3_000, 300), dtype=np.uint8)
    backend.read_rows([locs[i] for i in order], out)
    assert out.tobytes() == b''.join(blobs[i] for i in order)
    assert all(out[j].tobytes() == backend.read(locs[i]) for j, i in enumerate(order[:50]))
    with pytest.raises(CorruptData, match='expected 299'):
        backend.read_rows(locs[:3], np.empty((3, 299), dtype=np.uint8))
    backends.close()


def test_numpy_read_rows_verifies_every_row(tmp_path: Path) -> None:
    backend = NumpyBackend(tmp_path / 'data')
    blobs = [bytes([i % 256]) * 1_000 for i in range(2_000)]
    locs = backend.write_batch(blobs, options={}, typesize=1).locations
    (path,) = (tmp_path / 'data' / '10').glob('*.npy')
    with open(path, 'r+b') as fh:
        fh.seek(path.stat().st_size - 2_000 * 1_000 + 1_234 * 1_000 + 10)
        fh.write(b'\xff')
    out = np.empty((3, 1_000), dtype=np.uint8)
    with pytest.raises(ChecksumMismatch):
        backend.read_rows([locs[0], locs[1_234], locs[5]], out)
    backend.read_rows([locs[0], locs[1_235], locs[5]], out)
    assert out.tobytes() == blobs[0] + blobs[1_235] + blobs[5]
    backend.close()
