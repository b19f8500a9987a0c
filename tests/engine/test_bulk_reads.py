"""The bulk read path (``get_batch`` of fixed-shape array columns, ``engine/bulk.py``) on real repositories.

Every result is compared byte for byte with the arrays written and with one-at-a-time reads: every
dtype, every backend, a column whose samples lie in several backends, keys across many chunks and
files, any order, duplicates, missing keys, a writer's staged changes over its commit, str keys, key
arrays, the column index a reader builds, and damaged data (the error names the key).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.engine.samples import ALLOWED_DTYPES
from hangarfs.errors import InvalidKey, SampleNotFound, SampleReadError
from tests.helpers import flip_byte, new_repository

BACKENDS = ('hdf5', 'numpy', 'lmdb')


def values_of(dtype: np.dtype, n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=n * int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8)
    raw[raw < 100] = 0  # compressible, as real data is
    return raw.view(dtype).reshape(n, *shape)


def committed_column(
    path: Path, values: np.ndarray, backend: str, *, batches: int = 3, name: str = 'x'
) -> Repository:
    """A repository whose column ``name`` holds ``values`` under keys 0..n-1, written in ``batches``
    update_batch calls (so in several data files), committed."""
    repo = new_repository(path)
    co = repo.checkout(write=True)
    col = co.add_ndarray_column(name, shape=values.shape[1:], dtype=values.dtype, backend=backend)
    n = len(values)
    for part in np.array_split(np.arange(n), batches):
        col.update_batch(part.tolist(), values[part])
    co.commit('values')
    co.close()
    if backend != 'lmdb' and len(values[0].tobytes()) * n // batches >= 1 << 20:
        code = {'hdf5': '00', 'numpy': '10'}[backend]
        assert len(list((path / '.hangarfs' / 'data' / code).iterdir())) == batches  # in data files
    return repo


def check_batch(col: object, values: np.ndarray, keys: list[int]) -> None:
    got = col.get_batch(keys)  # type: ignore[attr-defined]
    want = values[keys]
    assert got.dtype == values.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()
    assert got.flags.writeable and got.flags.c_contiguous
    one_by_one = np.stack([col[k] for k in keys]) if keys else want  # type: ignore[index]
    assert one_by_one.tobytes() == got.tobytes()


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('dtype', [d.name for d in ALLOWED_DTYPES])
def test_every_dtype_and_backend_reads_byte_exact(tmp_path: Path, backend: str, dtype: str) -> None:
    dt = np.dtype(dtype)
    values = values_of(dt, 700, (40, 40), seed=dt.num)  # >= 1 MiB: written to a data file at once
    repo = committed_column(tmp_path / 'r', values, backend, batches=1)
    col = repo.checkout().columns['x']
    rng = np.random.default_rng(1)
    keys = rng.permutation(700)[:250].tolist()
    check_batch(col, values, keys)
    check_batch(col, values, list(range(700)))  # key order: whole chunks
    check_batch(col, values, [])


@pytest.mark.parametrize('backend', ('hdf5', 'numpy'))
def test_keys_across_many_chunks_and_files_in_any_order_with_duplicates(tmp_path: Path, backend: str) -> None:
    values = values_of(np.dtype('uint8'), 30_000, (100,))  # ~80 samples a chunk, 375 chunks, 2 files
    repo = committed_column(tmp_path / 'r', values, backend, batches=2)
    col = repo.checkout().columns['x']
    rng = np.random.default_rng(2)
    for _ in range(5):
        keys = rng.integers(0, 20_000, size=700).tolist()  # random, with repeats
        check_batch(col, values, keys)
    check_batch(col, values, [5, 5, 5, 19_999, 0, 5])
    check_batch(col, values, list(range(19_999, -1, -1)))  # reverse order, every chunk


def test_a_column_in_several_backends_and_an_inline_column(tmp_path: Path) -> None:
    values = values_of(np.dtype('float32'), 3_000, (300,))  # 1.2 MB a thousand: data files
    repo = new_repository(tmp_path / 'r')
    co = repo.checkout(write=True)
    col = co.add_ndarray_column('x', shape=(300,), dtype=np.float32)
    col.update_batch(list(range(1000)), values[:1000])
    col.change_backend('numpy')
    col.update_batch(list(range(1000, 2000)), values[1000:2000])
    col.change_backend('lmdb')
    col.update_batch(list(range(2000, 2990)), values[2000:2990])
    col.change_backend('hdf5')
    for k in range(2990, 3000):  # small writes: kept inline in LMDB until a data file is worth it
        col[k] = values[k]
    small = co.add_ndarray_column('labels', shape=(2,), dtype=np.int64)  # 16 bytes: inline in the tree
    labels = np.arange(6000, dtype=np.int64).reshape(3000, 2)
    small.update_batch(list(range(3000)), labels)
    co.commit('mixed')
    co.close()
    data = tmp_path / 'r' / '.hangarfs' / 'data'
    assert len(list((data / '00').iterdir())) == 1 and len(list((data / '10').iterdir())) == 1
    rco = repo.checkout()
    keys = np.random.default_rng(3).permutation(3000).tolist()
    check_batch(rco.columns['x'], values, keys)
    check_batch(rco.columns['labels'], labels, keys)
    rco.columns['x'].prepare_bulk_reads()  # the same through the reader's index
    rco.columns['labels'].prepare_bulk_reads()
    check_batch(rco.columns['x'], values, keys)
    check_batch(rco.columns['labels'], labels, keys)


@pytest.mark.parametrize('indexed', [False, True])
def test_missing_and_bad_keys(tmp_path: Path, indexed: bool) -> None:
    values = values_of(np.dtype('uint8'), 500, (10,))
    repo = committed_column(tmp_path / 'r', values, 'hdf5')
    col = repo.checkout().columns['x']
    if indexed:
        col.prepare_bulk_reads()
    with pytest.raises(SampleNotFound) as err:
        col.get_batch([1, 2, 777, 3, 888])
    assert err.value.key == 777 and "'x'" in str(err.value)
    with pytest.raises(SampleNotFound):
        col.get_batch(['a-str-key'])
    with pytest.raises(SampleNotFound):
        col.get_batch(np.array([1, 2**40], dtype=np.uint64))
    with pytest.raises(InvalidKey):
        col.get_batch([1, -2])
    with pytest.raises(InvalidKey):
        col.get_batch([1, True])  # a bool is not an int key, even after an int
    with pytest.raises(InvalidKey):
        col.get_batch([1, 2.0])
    check_batch(col, values, [499, 0])  # still fine afterwards


@pytest.mark.parametrize('backend', ('hdf5', 'numpy'))
def test_key_arrays_str_keys_and_the_index(tmp_path: Path, backend: str) -> None:
    values = values_of(np.dtype('int16'), 1_000, (40, 40))  # 3.2 MB: a data file
    repo = new_repository(tmp_path / 'r')
    co = repo.checkout(write=True)
    col = co.add_ndarray_column('x', shape=(40, 40), dtype=np.int16, backend=backend)
    keys: list[int | str] = [*range(500), *(f'k{i:04d}' for i in range(500))]  # ints, then strs
    col.update_batch(keys, values)
    co.commit('mixed keys')
    co.close()
    rco = repo.checkout()
    rcol = rco.columns['x']
    pick = np.random.default_rng(4).permutation(1000)[:300]
    asked = [keys[i] for i in pick]
    for indexed in (False, True):
        if indexed:
            rcol.prepare_bulk_reads()
        assert rcol.get_batch(asked).tobytes() == values[pick].tobytes()
        ints = pick[pick < 500]
        for arr in (ints.astype(np.int64), ints.astype(np.uint64), ints.astype(np.uint8) % 200):
            assert rcol.get_batch(arr).tobytes() == values[arr.astype(np.int64)].tobytes()


def test_the_reader_builds_its_index_by_itself_and_reads_the_same(tmp_path: Path) -> None:
    from hangarfs.engine import bulk

    values = values_of(np.dtype('uint8'), 2_000, (50,))
    repo = committed_column(tmp_path / 'r', values, 'hdf5')
    rco = repo.checkout()
    col = rco.columns['x']
    access = col._access
    old = bulk.INDEX_MIN_SAMPLES
    try:
        bulk.INDEX_MIN_SAMPLES = 1_000  # as for a column of 50,000 samples and more
        import hangarfs.engine.access as access_module

        access_module.INDEX_MIN_SAMPLES = 1_000
        rng = np.random.default_rng(5)
        for _ in range(4):  # 4 x 64 = 256 keys asked: past 1/16 of 2,000, so the index is built
            check_batch(col, values, rng.integers(0, 2_000, 64).tolist())
        assert access._indexes.get('x') is not None
        check_batch(col, values, rng.permutation(2_000).tolist())
    finally:
        bulk.INDEX_MIN_SAMPLES = old
        access_module.INDEX_MIN_SAMPLES = old


@pytest.mark.parametrize('backend', BACKENDS)
def test_a_writers_staged_changes_over_its_commit(tmp_path: Path, backend: str) -> None:
    values = values_of(np.dtype('uint16'), 1_200, (7,))
    repo = committed_column(tmp_path / 'r', values, backend)
    co = repo.checkout(write=True)
    col = co.columns['x']
    want = {k: values[k] for k in range(1_200)}
    new = values_of(np.dtype('uint16'), 300, (7,), seed=9)
    col.update_batch(list(range(100, 400)), new)  # overwrite some
    for k in range(100, 400):
        want[k] = new[k - 100]
    for k in (5, 6, 7):
        del col[k]
        del want[k]
    with col:
        for k in range(1_200, 1_250):  # new keys, still in the open batch when read
            col[k] = new[k - 1_200]
            want[k] = new[k - 1_200]
        keys = [1_249, 0, 150, 1_200, 399, 1_199, 150]
        assert col.get_batch(keys).tobytes() == np.stack([want[k] for k in keys]).tobytes()
    keys = sorted(want)
    np.random.default_rng(6).shuffle(keys)
    got = col.get_batch(keys)
    assert got.tobytes() == np.stack([want[k] for k in keys]).tobytes()
    with pytest.raises(SampleNotFound) as err:
        col.get_batch([1, 6, 2])
    assert err.value.key == 6
    co.commit('changes')
    co.close()
    rcol = repo.checkout().columns['x']
    rcol.prepare_bulk_reads()
    assert rcol.get_batch(keys).tobytes() == got.tobytes()


@pytest.mark.parametrize('indexed', [False, True])
def test_damaged_chunk_names_the_key(tmp_path: Path, indexed: bool) -> None:
    values = values_of(np.dtype('float32'), 4_200, (64,))  # 1.1 MB: one hdf5 file
    repo = committed_column(tmp_path / 'r', values, 'hdf5', batches=1)
    (path,) = (tmp_path / 'r' / '.hangarfs' / 'data' / '00').glob('*.h5')
    with h5py.File(path, 'r', locking=False) as f:
        info = f['heap'].id.get_chunk_info(3)
        chunk_bytes = int(f.attrs['chunk_bytes'])
    flip_byte(path, info.byte_offset + info.size // 2)
    damaged = {k for k in range(4_200) if (k * 256) // chunk_bytes == 3}
    col = repo.checkout().columns['x']
    if indexed:
        col.prepare_bulk_reads()
    bad = min(damaged)
    with pytest.raises(SampleReadError) as err:
        col.get_batch([0, 1, bad, bad + 1])
    assert err.value.key == bad and 'checksum mismatch' in str(err.value)
    fine = [k for k in range(0, 4_200, 7) if k not in damaged]
    check_batch(col, values, fine)  # the rest still reads


def test_damaged_numpy_file_names_the_key(tmp_path: Path) -> None:
    values = values_of(np.dtype('uint8'), 300, (4_000,))
    repo = committed_column(tmp_path / 'r', values, 'numpy', batches=1)
    (path,) = (tmp_path / 'r' / '.hangarfs' / 'data' / '10').glob('*.npy')
    header = path.stat().st_size - 300 * 4_000
    flip_byte(path, header + 42 * 4_000 + 50)  # inside sample 42
    col = repo.checkout().columns['x']
    for indexed in (False, True):
        if indexed:
            col.prepare_bulk_reads()
        with pytest.raises(SampleReadError) as err:
            col.get_batch([3, 42, 7])
        assert err.value.key == 42
        check_batch(col, values, [3, 7, 299])


@pytest.mark.parametrize('indexed', [False, True])
def test_samples_larger_than_a_chunk(tmp_path: Path, indexed: bool) -> None:
    values = values_of(np.dtype('float32'), 4, (600, 600))  # 1.4 MB a sample: each spans 1 MiB chunks
    repo = committed_column(tmp_path / 'r', values, 'hdf5', batches=1)
    col = repo.checkout().columns['x']
    if indexed:
        col.prepare_bulk_reads()
    check_batch(col, values, [3, 0, 2, 2, 1])


def test_an_empty_column_and_an_empty_batch(tmp_path: Path) -> None:
    repo = new_repository(tmp_path / 'r')
    co = repo.checkout(write=True)
    co.add_ndarray_column('x', shape=(3,), dtype=np.float64)
    co.add_ndarray_column('y', shape=(3,), dtype=np.float64).update_batch([1], np.ones((1, 3)))
    co.commit('empty')
    co.close()
    rco = repo.checkout()
    for indexed in (False, True):
        for name in ('x', 'y'):
            col = rco.columns[name]
            if indexed:
                col.prepare_bulk_reads()
            assert col.get_batch([]).shape == (0, 3)
            with pytest.raises(SampleNotFound):
                col.get_batch([0])
