"""What a dataset reads: key alignment across columns, index_range, field names, and bad inputs.

These rules are shared by the torch, tensorflow and numpy loaders; they are exercised here through
``make_numpy_dataset`` (no framework needed) and ``resolve_source``, and through the framework
loaders in their own test files.
"""

from __future__ import annotations

import pickle
from contextlib import closing

import numpy as np
import pytest

from hangarfs import (
    ClosedError,
    ColumnKeysMismatch,
    ColumnNotFound,
    DatasetError,
    common_keys,
    make_numpy_dataset,
)
from hangarfs.loaders.order import BlockShuffle, epoch_order
from hangarfs.loaders.source import KeyList, batch_tuple_type, resolve_source
from tests.loaders.conftest import MISSING_FROM_PARTIAL, DatasetRepo, N


def test_keys_none_reads_every_key_in_column_order(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    src = resolve_source([co['images'], co['labels']], None, None, None)
    assert src.keys == KeyList(range(N))
    assert src.commit == dataset_repo.commit
    assert src.field_names == ('images', 'labels')
    assert src.repo_path == str(dataset_repo.path)


def test_keys_none_with_unequal_key_sets_names_the_column_and_keys(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    with pytest.raises(ColumnKeysMismatch) as info:
        make_numpy_dataset([co['images'], co['partial']])
    err = info.value
    assert err.column == 'partial' and err.missing == list(MISSING_FROM_PARTIAL)
    assert "column 'partial' lacks 3 of the 600 keys of column 'images' (3, 77, 598)" in str(err)
    assert 'common_keys' in str(err)
    # the other way round: the first column is the one lacking keys
    with pytest.raises(ColumnKeysMismatch, match="column 'partial' lacks 3 of the 600 keys of column 'ids'"):
        make_numpy_dataset([co['partial'], co['ids']])
    assert isinstance(err, KeyError)  # except KeyError keeps working


def test_common_keys_reads_the_shared_samples(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    cols = [co['ids'], co['partial']]
    shared = common_keys(cols)
    assert shared == [k for k in range(N) if k not in MISSING_FROM_PARTIAL]
    ds = make_numpy_dataset(cols, keys=shared, batch_size=1000, shuffle=False)
    (batch,) = list(ds)
    assert batch.ids.tolist() == shared
    assert batch.partial[:, 0].tolist() == shared


def test_given_keys_are_read_in_order_with_repeats(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    keys = [5, 3, 5, np.int64(599), 0]
    ds = make_numpy_dataset([co['ids'], co['images']], keys=keys, batch_size=10, shuffle=False)
    (batch,) = list(ds)
    assert batch.ids.tolist() == [5, 3, 5, 599, 0]
    np.testing.assert_array_equal(batch.images, dataset_repo.images[[5, 3, 5, 599, 0]])


def test_given_keys_missing_from_a_column(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    with pytest.raises(ColumnKeysMismatch) as info:
        make_numpy_dataset([co['ids'], co['partial']], keys=[1, 77, 'nope', 77])
    assert info.value.column == 'ids'  # 'nope' is in no column: the first one reports it
    assert info.value.missing == ['nope']
    with pytest.raises(ColumnKeysMismatch, match=r"column 'partial' lacks 1 of the 2 keys asked for"):
        make_numpy_dataset([co['ids'], co['partial']], keys=[1, 77])
    with pytest.raises(TypeError, match='int or str'):
        make_numpy_dataset([co['ids']], keys=[1.5])
    with pytest.raises(TypeError, match='list'):
        make_numpy_dataset([co['ids']], keys='abc')


def test_index_range_slices_the_key_list(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    src = resolve_source(co['ids'], None, slice(100, 200, 3), None)
    assert list(src.keys) == list(range(100, 200, 3))
    src = resolve_source(co['ids'], [9, 8, 7, 6], slice(1, 3), None)
    assert list(src.keys) == [8, 7]
    with pytest.raises(TypeError, match='slice'):
        resolve_source(co['ids'], None, (0, 10), None)  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match='no samples'):
        resolve_source(co['ids'], None, slice(N, None), None)


def test_field_names(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    src = resolve_source([co['images'], co['labels']], None, None, ('image', 'label'))
    assert src.field_names == ('image', 'label')
    for bad, match in (
        (('image',), 'expected 2 field_names'),
        (('image', 'image'), 'unique'),
        (('image', 'class'), "'class' cannot name a field"),
        (('image', '_x'), "'_x' cannot name a field"),
        ('image,label', 'list or tuple'),
    ):
        with pytest.raises((DatasetError, TypeError), match=match):
            resolve_source([co['images'], co['labels']], None, None, bad)


def test_bad_columns(dataset_repo: DatasetRepo, tmp_path: object) -> None:
    repo = dataset_repo.repo
    co = dataset_repo.reader()
    with pytest.raises(ColumnNotFound, match="no column named 'nope'; columns here: captions, ids"):
        make_numpy_dataset([co['images'], co['nope']])
    with pytest.raises(TypeError, match=r"co\['images'\] is the column of that name"):
        make_numpy_dataset(['images'])
    with pytest.raises(TypeError, match='expected a column or a list of columns'):
        make_numpy_dataset('images')
    with pytest.raises(DatasetError, match='at least one column'):
        make_numpy_dataset([])
    # a writer checkout is refused, with what to do instead
    images = co['images']
    with closing(repo.checkout(write=True)) as wco:
        with pytest.raises(DatasetError, match=r'writer checkout.*make the dataset from a read checkout'):
            make_numpy_dataset([wco['images']])
        with pytest.raises(DatasetError, match='writer checkout'):
            make_numpy_dataset([images, wco['labels']])
        wco['labels'][0] = np.array([5])
        wco.commit('relabel')
    # columns of two commits
    new = repo.checkout()
    with pytest.raises(DatasetError, match='the columns of a dataset come from one commit'):
        make_numpy_dataset([images, new['labels']])
    # a closed checkout
    closed = repo.checkout()
    col = closed['images']
    closed.close()
    with pytest.raises(ClosedError, match="column 'images' belongs to a closed checkout"):
        make_numpy_dataset([col])


def test_nested_columns_are_refused(dataset_repo: DatasetRepo) -> None:
    with closing(dataset_repo.repo.checkout(write=True)) as wco:
        scans = wco.add_ndarray_column('scans', shape=(2,), dtype=np.int16, contains_subsamples=True)
        scans['a'] = {'x': np.zeros(2, np.int16)}
        wco.commit('nested')
    co = dataset_repo.reader()
    with pytest.raises(DatasetError, match="column 'scans' holds subsamples"):
        make_numpy_dataset([co['scans']])


def test_a_dataset_outlives_the_checkout_it_was_made_from(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    ds = make_numpy_dataset([co['ids']], batch_size=N, shuffle=False)
    co.close()
    (batch,) = list(ds)
    assert batch.ids.tolist() == list(range(N))


def test_the_source_pickles_small(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    src = resolve_source([co['images'], co['labels']], None, None, None)
    data = pickle.dumps(src)
    assert len(data) < 1000  # path, commit, fields and a range: no sample data
    assert pickle.loads(data) == src
    odd = resolve_source(co['ids'], [5, 1, 7], None, None)
    assert pickle.loads(pickle.dumps(odd)) == odd


def test_key_list_forms() -> None:
    assert KeyList.from_keys([3, 4, 5]) == KeyList(range(3, 6))
    ints = KeyList.from_keys([1, 5, 2**64 - 1])
    assert list(ints) == [1, 5, 2**64 - 1] and ints[2] == 2**64 - 1
    assert ints.take(np.array([2, 0])) == [2**64 - 1, 1]
    mixed = KeyList.from_keys([0, 'b', 'a'])
    assert list(mixed) == [0, 'b', 'a'] and mixed.take(np.array([1])) == ['b']
    assert list(KeyList(range(10))[2:8:3]) == [2, 5]
    assert KeyList(range(10, 20, 2)).take(np.array([0, 4])) == [10, 18]


def test_batch_tuples_pickle_by_field_names() -> None:
    cls = batch_tuple_type(('image', 'label'))
    assert batch_tuple_type(('image', 'label')) is cls
    value = cls(np.arange(3), 7)
    back = pickle.loads(pickle.dumps(value))
    assert type(back) is cls and back.label == 7 and back._fields == ('image', 'label')


def test_epoch_orders() -> None:
    n = 10_000
    for shuffle in (False, True, BlockShuffle(block_size=100, window=1000)):
        a = epoch_order(n, shuffle, seed=1, epoch=0)
        assert sorted(a.tolist()) == list(range(n))  # every index once
        assert np.array_equal(a, epoch_order(n, shuffle, seed=1, epoch=0))  # repeatable
        if shuffle is not False:
            assert not np.array_equal(a, epoch_order(n, shuffle, seed=1, epoch=1))
            assert not np.array_equal(a, epoch_order(n, shuffle, seed=2, epoch=0))
    # blocks: each window of 1000 positions holds whole blocks of 100 consecutive indices
    order = epoch_order(n, BlockShuffle(block_size=100, window=1000), seed=3, epoch=0)
    for w in range(0, n, 1000):
        blocks = set((order[w : w + 1000] // 100).tolist())
        assert len(blocks) == 10
    with pytest.raises(ValueError, match='block_size must be an int >= 1'):
        BlockShuffle(block_size=0)
