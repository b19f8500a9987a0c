"""The Python API of issue 2, as a user meets it: init, columns, samples, commits, branches, readers."""

from __future__ import annotations

import json
import re
import warnings
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import (
    ColumnNotFound,
    Repository,
    RepositoryExists,
    RepositoryNotFound,
    SampleNotFound,
)
from hangarfs.errors import BackendError, BranchExists, BranchInUse, StagingDirty
from tests.helpers import USER, Children, checkout_contents, new_repository, repository_state

RNG = np.random.default_rng(20240601)


def mnist_like(n: int) -> tuple[np.ndarray, np.ndarray]:
    images = RNG.integers(0, 256, size=(n, 784), dtype=np.uint8)
    images[images < 192] = 0  # about a quarter of the pixels non-zero, as in the benchmark
    labels = RNG.integers(0, 10, size=n, dtype=np.int64)
    return images, labels


# ---------------------------------------------------------------------------------------- init


def test_opening_a_path_without_a_repository_says_how_to_init(tmp_path: Path) -> None:
    with pytest.warns(
        UserWarning, match=r'no hangarfs repository.*init\(user_name=\.\.\., user_email=\.\.\.\)'
    ):
        repo = Repository(tmp_path)
    assert not repo.initialized
    assert 'not initialized' in repr(repo) and '.init(' in repr(repo)
    with pytest.raises(RepositoryNotFound, match='init'):
        repo.checkout()
    assert isinstance(RepositoryNotFound(str(tmp_path)), FileNotFoundError)


def test_init_creates_an_empty_repository_with_a_master_branch(tmp_path: Path) -> None:
    repo = Repository(tmp_path / 'new', exists=False)
    assert repo.init(user_name='Ada', user_email='ada@example.org') == str(tmp_path / 'new')
    assert repo.initialized
    assert repo.list_branches() == ['master']
    assert (tmp_path / 'new' / '.hangarfs').is_dir()
    assert not list(tmp_path.glob('new/.hangarfs-init-*')), 'init left its temporary directory behind'
    # reopening the path finds it, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        again = Repository(tmp_path / 'new')
    assert again.initialized and 'master' in repr(again)


def test_init_refuses_to_overwrite_unless_remove_old(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('notes')['a'] = 'keep me'
        first = co.commit('first')
    with pytest.raises(RepositoryExists, match='remove_old=True'):
        repo.init(**USER)
    with pytest.raises(RepositoryExists):
        Repository(repo.path).init(**USER, remove_old=False)
    with closing(repo.checkout()) as co:
        assert co.commit_hash == first and co['notes', 'a'] == 'keep me'

    repo.init(**USER, remove_old=True)
    assert repo.store.refs.branch_head('master') == ''
    with closing(repo.checkout(write=True)) as co:
        assert list(co.columns) == []


def test_init_checks_user_name_and_email(tmp_path: Path) -> None:
    repo = Repository(tmp_path, exists=False)
    with pytest.raises(ValueError, match='user_name'):
        repo.init(user_name=' ', user_email='ada@example.org')
    with pytest.raises(ValueError, match='user_email'):
        repo.init(user_name='Ada', user_email='nobody')
    assert not repo.initialized


# ---------------------------------------------------------------------------------------- the whole story


def test_the_issue_walkthrough_end_to_end(repo: Repository, capsys: pytest.CaptureFixture[str]) -> None:
    imgs, labs = mnist_like(40)
    co = repo.checkout(write=True)
    assert co.branch_name == 'master' and co.iswriteable
    images = co.add_ndarray_column('images', prototype=np.zeros(784, np.uint8))
    labels = co.add_ndarray_column('labels', shape=(1,), dtype=np.int64, backend='numpy')
    vols = co.add_ndarray_column(
        'volumes',
        shape=(32, 32, 32),
        dtype=np.float32,
        variable_shape=True,
        backend='hdf5',
        backend_options={'complib': 'blosc:zstd', 'complevel': 5, 'shuffle': 'byte'},
    )
    caps = co.add_str_column('captions')
    blobs = co.add_bytes_column('blobs')
    scans = co.add_ndarray_column('scans', shape=(8, 8), dtype=np.uint16, contains_subsamples=True)

    with images, labels:  # the fast form
        for i, (img, lab) in enumerate(zip(imgs[:20], labs[:20])):
            images[i] = img
            labels[i] = np.array([lab])
    for i in range(20, 30):  # the plain form
        images[i] = imgs[i]
        labels[i] = np.array([labs[i]])
    images.update({'a': imgs[30], 'b': imgs[31]})
    images.update_batch([32, 33, 34], imgs[32:35])

    assert np.array_equal(co.columns['images'][0], imgs[0])
    assert np.array_equal(co['images', 33], imgs[33])
    first_image, first_label = co[('images', 0), ('labels', 0)]
    assert np.array_equal(first_image, imgs[0]) and first_label[0] == labs[0]
    assert len(images) == 35 and 0 in images and 'a' in images and 31 not in images
    assert list(images.keys()) == [*range(30), 32, 33, 34, 'a', 'b']
    assert np.array_equal(images.get_batch([1, 'b', 34]), np.stack([imgs[1], imgs[31], imgs[34]]))

    del images[5]
    assert np.array_equal(images.pop(6), imgs[6])
    assert 5 not in images and 6 not in images and len(images) == 33

    axial, coronal = RNG.integers(0, 4096, (2, 8, 8), dtype=np.uint16)
    scans['patient1'] = {'axial': axial, 'coronal': coronal}
    assert np.array_equal(scans['patient1', 'axial'], axial)
    assert np.array_equal(scans['patient1']['coronal'], coronal)

    vol = RNG.random((4, 5, 6), dtype=np.float32)
    vols['v1'] = vol
    caps[0] = 'a handwritten zero'
    blobs[0] = b'\x00\xffraw'
    co.metadata['source'] = 'mnist v1'

    digest = co.commit('first commit')
    assert re.fullmatch('[0-9a-f]{64}', digest)
    co.close()

    repo.log()
    out = capsys.readouterr().out
    assert f'* {digest[:12]} (HEAD -> master) first commit' in out
    repo.summary()
    out = capsys.readouterr().out
    for text in ('images', '33 samples', 'uint8[784]', 'labels', 'backend=numpy', 'volumes', 'variable'):
        assert text in out

    repo.create_branch('relabel')
    assert repo.list_branches() == ['master', 'relabel']
    with closing(repo.checkout(write=True, branch='relabel')) as dev:
        dev['labels'][0] = np.array([9])
        relabelled = dev.commit('relabel zero')

    old = repo.checkout(commit=digest)
    dev = repo.checkout(branch='relabel')
    master = repo.checkout(branch='master')
    assert old['labels', 0][0] == labs[0] and master['labels', 0][0] == labs[0]
    assert dev['labels', 0][0] == 9 and dev.commit_hash == relabelled
    assert np.array_equal(old['volumes', 'v1'], vol) and old['volumes', 'v1'].shape == (4, 5, 6)
    assert old['captions', 0] == 'a handwritten zero' and old['blobs', 0] == b'\x00\xffraw'
    assert old.metadata['source'] == 'mnist v1'
    assert np.array_equal(old['scans']['patient1']['axial'], axial)
    for reader in (old, dev, master):
        reader.close()

    with closing(repo.checkout(write=True)) as co:
        co['images'].change_backend('numpy')
        co['images'][100] = imgs[39]
        co.commit('more images, now in numpy files')
    assert repo.verify_repo_integrity() is True
    report = repo.verify_report()
    assert report.ok and report.commits == 3 and report.samples > 40


def test_a_writer_checkout_closed_by_contextlib_closing_releases_the_lock(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('notes')['x'] = 'hello'
        co.commit('notes')
        assert repo.writer_lock_held
    assert 'closed' in repr(co) and not repo.writer_lock_held
    co2 = repo.checkout(write=True)  # the lock is free again
    co2.close()


# ---------------------------------------------------------------------------------------- columns


@pytest.mark.parametrize(
    ('backend', 'code'),
    [('hdf5', '00'), ('00', '00'), ('numpy', '10'), ('10', '10'), ('lmdb', '30'), ('30', '30')],
)
def test_backends_are_chosen_by_name_or_code(repo: Repository, backend: str, code: str) -> None:
    data = RNG.random((3, 100), dtype=np.float32)
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', shape=(100,), dtype=np.float32, backend=backend)
        assert col.backend == code
        col.update_batch([0, 1, 2], data)
        co.commit('x')
    with closing(repo.checkout()) as co:
        assert co['x'].backend == code
        assert co['x'].backend_name == {'00': 'hdf5', '10': 'numpy', '30': 'lmdb'}[code]
        assert np.array_equal(co['x'].get_batch([0, 1, 2]), data)


def test_hdf5_backend_options_are_recorded_in_the_schema(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column(
            'v',
            shape=(10,),
            dtype=np.int32,
            backend='hdf5',
            backend_options={'complib': 'blosc:lz4', 'complevel': 3, 'shuffle': 'bit'},
        )
        assert col.backend_options == {'complib': 'blosc:lz4', 'complevel': 3, 'shuffle': 'bit'}
        col[0] = np.arange(10, dtype=np.int32)
        co.commit('v')
    with closing(repo.checkout()) as co:
        assert co['v'].schema.backend_options['complib'] == 'blosc:lz4'
        assert 'blosc:lz4' in repr(co['v'])


@pytest.mark.parametrize(
    ('backend', 'options'),
    [
        ('hdf5', {'complib': 'gzip', 'shuffle': 'bit'}),
        ('hdf5', {'complevel': 11}),
        ('hdf5', {'shuffle': 'sideways'}),
        ('hdf5', {'chunks': 4}),
        ('numpy', {'complevel': 1}),
        ('lmdb', {'anything': 1}),
        ('tape', None),
        ('20', None),
    ],
)
def test_bad_backend_or_options_are_refused_and_no_column_is_made(
    repo: Repository, backend: str, options: dict[str, object] | None
) -> None:
    with closing(repo.checkout(write=True)) as co:
        with pytest.raises(BackendError, match=r'backend'):
            co.add_ndarray_column('x', shape=(4,), dtype=np.uint8, backend=backend, backend_options=options)
        assert 'x' not in co.columns


def test_default_backends_follow_sample_size(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        assert co.add_ndarray_column('tiny', shape=(4,), dtype=np.int64).backend_name == 'lmdb'
        assert co.add_ndarray_column('small', shape=(64,), dtype=np.int64).backend_name == 'numpy'
        assert co.add_ndarray_column('large', shape=(784,), dtype=np.uint8).backend_name == 'hdf5'
        assert co.add_str_column('text').backend_name == 'lmdb'
        assert co.add_bytes_column('raw').backend_name == 'lmdb'


def test_a_repository_wide_default_backend(repo: Repository, tmp_path: Path) -> None:
    assert repo.default_backend is None
    repo.default_backend = 'numpy'
    assert repo.default_backend == 'numpy'
    with closing(repo.checkout(write=True)) as co:
        assert co.add_ndarray_column('large', shape=(784,), dtype=np.uint8).backend_name == 'numpy'
        assert co.add_ndarray_column('other', shape=(784,), dtype=np.uint8, backend='hdf5').backend == '00'
    assert Repository(repo.path).default_backend == 'numpy'  # it is stored in the repository
    repo.default_backend = None
    assert repo.default_backend is None
    with pytest.raises(BackendError):
        repo.default_backend = 'floppy'

    other = new_repository(tmp_path / 'other', default_backend='30')
    assert other.default_backend == 'lmdb'
    with closing(other.checkout(write=True)) as co:
        assert co.add_ndarray_column('big', shape=(4096,), dtype=np.uint8).backend == '30'


def test_variable_shape_columns_keep_each_samples_shape(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('v', shape=(10, 10), dtype=np.float64, variable_shape=True)
        assert col.variable_shape and col.schema_type == 'variable_shape' and col.shape == (10, 10)
        samples = {i: RNG.random((i + 1, 10 - i)) for i in range(10)}
        samples['empty'] = np.zeros((0, 3))
        col.update(samples)
        co.commit('shapes')
    with closing(repo.checkout()) as co:
        col = co['v']
        for k, v in samples.items():
            assert col[k].shape == v.shape and np.array_equal(col[k], v)
        batch = col.get_batch([0, 3, 'empty'])
        assert isinstance(batch, list) and [b.shape for b in batch] == [(1, 10), (4, 7), (0, 3)]


def test_prototype_gives_shape_and_dtype(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('p', prototype=np.zeros((3, 4), dtype=np.int16))
        assert col.shape == (3, 4) and col.dtype == np.dtype(np.int16)
        col2 = co.add_ndarray_column('q', shape=7, dtype='float32')
        assert col2.shape == (7,) and col2.dtype == np.dtype(np.float32)
        with pytest.raises(ValueError, match='shape= and dtype='):
            co.add_ndarray_column('r', shape=(3,))
        with pytest.raises(ValueError, match='not supported'):
            co.add_ndarray_column('r', shape=(3,), dtype=np.complex64)
        with pytest.raises(TypeError, match='prototype'):
            co.add_ndarray_column('r', prototype=[1, 2, 3])  # type: ignore[arg-type]
        assert 'r' not in co.columns


def test_every_supported_dtype_round_trips(repo: Repository) -> None:
    dtypes = ['bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64']
    dtypes += ['float16', 'float32', 'float64']
    with closing(repo.checkout(write=True)) as co:
        for dt in dtypes:
            co.add_ndarray_column(dt, shape=(5,), dtype=dt)[0] = (np.arange(5) % 2).astype(dt)
        co.commit('dtypes')
    with closing(repo.checkout()) as co:
        for dt in dtypes:
            got = co[dt, 0]
            assert got.dtype == np.dtype(dt) and np.array_equal(got, (np.arange(5) % 2).astype(dt))


def test_str_and_bytes_columns(repo: Repository) -> None:
    texts = {0: '', 1: 'plain', 2: 'ünïcödé ✓ 字', 'long': 'x' * 100_000}
    raw = {0: b'', 1: bytes(range(256)), 'big': RNG.bytes(300_000)}
    with closing(repo.checkout(write=True)) as co:
        caps = co.add_str_column('captions')
        blobs = co.add_bytes_column('blobs')
        caps.update(texts)
        blobs.update(raw)
        blobs[2] = bytearray(b'from a bytearray')
        blobs[3] = memoryview(b'from a memoryview')
        assert caps.dtype is str and blobs.dtype is bytes
        co.commit('text and bytes')
    with closing(repo.checkout()) as co:
        assert dict(co['captions'].items()) == texts
        assert co['blobs', 2] == b'from a bytearray' and co['blobs', 3] == b'from a memoryview'
        assert co['blobs'].get_batch([0, 1, 'big']) == [raw[0], raw[1], raw['big']]


def test_columns_mapping_and_deleting_a_column(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('b')['k'] = 'v'
        co.add_str_column('a')['k'] = 'v'
        co.commit('two columns')
        assert list(co.columns) == ['a', 'b'] and len(co.columns) == 2 and 'a' in co.columns
        assert co.columns.iswriteable
        assert 'a' in repr(co.columns) and '1 samples' in repr(co.columns)
        with pytest.raises(ColumnNotFound, match="no column named 'zzz'; columns here: a, b"):
            co.columns['zzz']
        del co.columns['a']
        assert list(co.columns) == ['b']
        co.commit('drop a')
    with closing(repo.checkout()) as co:
        assert list(co.columns) == ['b']
    with closing(repo.checkout(commit=repo.log(return_contents=True)['order'][1])) as co:  # type: ignore[index]
        assert list(co.columns) == ['a', 'b'] and co['a', 'k'] == 'v'


def test_a_column_added_and_deleted_before_commit_leaves_no_trace(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('keep')['k'] = 'v'
        temp = co.add_str_column('temp')
        temp['k'] = 'v'
        co.columns.delete('temp')
        assert 'temp' not in co.columns
        co.commit('only keep')
    with closing(repo.checkout()) as co:
        assert list(co.columns) == ['keep']


def test_a_column_deleted_and_added_again_starts_empty(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        old = co.add_ndarray_column('c', shape=(3,), dtype=np.uint8)
        old.update({i: np.full(3, i, np.uint8) for i in range(5)})
        co.commit('old c')
        del co.columns['c']
        new = co.add_str_column('c')
        assert len(new) == 0 and list(new.keys()) == []
        new['x'] = 'fresh'
        co.commit('new c')
    with closing(repo.checkout()) as co:
        assert dict(co['c'].items()) == {'x': 'fresh'}


# ---------------------------------------------------------------------------------------- samples and keys


def test_keys_order_ints_ascending_then_strs(repo: Repository) -> None:
    keys = [10, 'b', 2, 'a', 0, '10', 300, 'B', 2**40, 'a.b_c-d', 255, 256]
    with closing(repo.checkout(write=True)) as co:
        col = co.add_str_column('k')
        for k in keys:
            col[k] = f'value of {k!r}'
        expected = [0, 2, 10, 255, 256, 300, 2**40, '10', 'B', 'a', 'a.b_c-d', 'b']
        assert list(col.keys()) == expected
        assert list(col) == expected
        assert list(col.values()) == [f'value of {k!r}' for k in expected]
        assert [k for k, _ in col.items()] == expected
        co.commit('keys')
    with closing(repo.checkout()) as co:
        assert list(co['k'].keys()) == expected


def test_int_5_and_str_5_are_different_keys(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', shape=(1,), dtype=np.int64)
        col[5] = np.array([5])
        assert '5' not in col
        col['5'] = np.array([55])
        assert len(col) == 2 and list(col.keys()) == [5, '5']
        co.commit('fives')
        del col['5']
        assert 5 in col and '5' not in col
    with closing(repo.checkout()) as co:
        assert co['x', 5][0] == 5 and co['x', '5'][0] == 55


def test_numpy_integer_keys_are_the_same_as_int_keys(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_str_column('s')
        col[np.int64(7)] = 'seven'
        assert col[7] == 'seven' and col[np.uint8(7)] == 'seven'
        assert list(col.keys()) == [7] and type(next(iter(col.keys()))) is int


def test_get_pop_and_delete(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_str_column('s')
        col.update({1: 'one', 2: 'two', 3: 'three'})
        co.commit('three')
        assert col.get(1) == 'one' and col.get(9) is None and col.get(9, 'dflt') == 'dflt'
        assert col.pop(2) == 'two' and col.pop(9, None) is None
        with pytest.raises(SampleNotFound, match="column 's' has no sample with key 9"):
            col.pop(9)
        del col[1]
        with pytest.raises(SampleNotFound):
            del col[1]
        with pytest.raises(KeyError):  # SampleNotFound is a KeyError too
            col[1]
        assert list(col.keys()) == [3] and len(col) == 1
        co.commit('deleted')
    with closing(repo.checkout()) as co:
        assert dict(co['s'].items()) == {3: 'three'}


def test_overwriting_a_sample(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', shape=(2,), dtype=np.int32)
        col[0] = np.array([1, 2], np.int32)
        first = co.commit('v1')
        col[0] = np.array([3, 4], np.int32)
        assert list(col[0]) == [3, 4] and len(col) == 1
        co.commit('v2')
    with closing(repo.checkout(commit=first)) as co:
        assert list(co['x', 0]) == [1, 2]
    with closing(repo.checkout()) as co:
        assert list(co['x', 0]) == [3, 4]


def test_returned_arrays_are_the_callers_to_change(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', shape=(3,), dtype=np.int64)
        original = np.array([1, 2, 3])
        col[0] = original
        original[0] = 99  # the column took a copy
        got = col[0]
        got[1] = 42
        assert list(col[0]) == [1, 2, 3]


def test_non_contiguous_and_fortran_arrays_are_stored_in_c_order(repo: Repository) -> None:
    base = np.arange(64, dtype=np.int32).reshape(8, 8)
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', shape=(4, 8), dtype=np.int32)
        col['sliced'] = base[::2]
        col['fortran'] = np.asfortranarray(base[:4])
        col['transposed'] = base.T[:4]
        col.update_batch(['a', 'b'], np.stack([base[::2], base[4:]])[:, :, ::1])
        co.commit('layouts')
    with closing(repo.checkout()) as co:
        assert np.array_equal(co['x', 'sliced'], base[::2])
        assert np.array_equal(co['x', 'fortran'], base[:4]) and co['x', 'fortran'].flags.c_contiguous
        assert np.array_equal(co['x', 'transposed'], base.T[:4])
        assert np.array_equal(co['x'].get_batch(['a', 'b']), np.stack([base[::2], base[4:]]))


def test_update_batch_and_get_batch_for_many_samples(repo: Repository) -> None:
    imgs, labs = mnist_like(2_000)
    keys = list(range(2_000))
    with closing(repo.checkout(write=True)) as co:
        images = co.add_ndarray_column('images', prototype=imgs[0])
        labels = co.add_ndarray_column('labels', shape=(1,), dtype=np.int64)
        images.update_batch(keys, imgs)
        labels.update_batch(keys, labs.reshape(-1, 1))
        co.commit('2000 images')
    with closing(repo.checkout()) as co:
        order = list(RNG.permutation(2_000))
        assert np.array_equal(co['images'].get_batch(order), imgs[order])
        assert np.array_equal(co['labels'].get_batch(order)[:, 0], labs[order])
        assert len(co['images']) == 2_000
        with pytest.raises(SampleNotFound):
            co['images'].get_batch([0, 5000])
        assert co['images'].get_batch([]).shape == (0, 784)


def test_update_batch_from_a_list_of_arrays_and_str(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        v = co.add_ndarray_column('v', shape=(4,), dtype=np.uint8, variable_shape=True)
        v.update_batch(['a', 'b'], [np.arange(2, dtype=np.uint8), np.arange(4, dtype=np.uint8)])
        s = co.add_str_column('s')
        s.update_batch([1, 2], ['one', 'two'])
        with pytest.raises(ValueError, match='2 keys but 3 values'):
            s.update_batch([1, 2], ['a', 'b', 'c'])
        assert list(v['b']) == [0, 1, 2, 3] and s[2] == 'two'


def test_update_takes_pairs_and_keyword_arguments(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        s = co.add_str_column('s')
        s.update([(1, 'one'), (2, 'two')], extra='kw')
        assert dict(s.items()) == {1: 'one', 2: 'two', 'extra': 'kw'}


def test_identical_samples_are_stored_once(repo: Repository) -> None:
    block = RNG.integers(0, 255, (256, 256), dtype=np.uint8)  # 64 KiB
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', prototype=block)
        with col:
            for i in range(40):
                col[i] = block
        co.commit('same block 40 times')
    size = sum(f.stat().st_size for f in (Path(repo.path) / '.hangarfs' / 'data').rglob('*') if f.is_file())
    assert size < 40 * block.nbytes / 4
    with closing(repo.checkout()) as co:
        assert all(np.array_equal(v, block) for v in co['x'].values())


def test_writes_inside_a_with_block_read_back_before_it_exits(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', shape=(2,), dtype=np.int8)
        with col:
            col[0] = np.array([1, 2], np.int8)
            assert list(col[0]) == [1, 2] and 0 in col and len(col) == 1
            del col[0]
            assert 0 not in col
            col[1] = np.array([3, 4], np.int8)
        assert list(col.keys()) == [1]


def test_a_with_block_over_two_columns_writes_both(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        a = co.add_str_column('a')
        b = co.add_str_column('b')
        with a, b:
            for i in range(50):
                a[i] = f'a{i}'
                b[i] = f'b{i}'
        co.commit('a and b')
    with closing(repo.checkout()) as co:
        assert len(co['a']) == len(co['b']) == 50 and co['b', 49] == 'b49'


def test_large_ingest_goes_to_collection_files_not_one_file_per_sample(repo: Repository) -> None:
    data = RNG.random((2, 300, 32, 32), dtype=np.float32)  # 1.2 MB for each column
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('h', prototype=data[0, 0], backend='hdf5').update_batch(range(300), data[0])
        co.add_ndarray_column('n', prototype=data[0, 0], backend='numpy').update_batch(range(300), data[1])
        co.commit('1.2 MB twice')
    data_dir = Path(repo.path) / '.hangarfs' / 'data'
    assert 1 <= len(list((data_dir / '00').glob('*.h5'))) <= 2
    assert 1 <= len(list((data_dir / '10').glob('*.npy'))) <= 2
    assert not list(data_dir.rglob('*.tmp'))
    with closing(repo.checkout()) as co:
        assert np.array_equal(co['h'].get_batch(range(300)), data[0])
        assert np.array_equal(co['n'].get_batch(range(300)), data[1])


# ---------------------------------------------------------------------------------------- nested columns


def test_nested_columns_hold_samples_of_subsamples(repo: Repository) -> None:
    a, c, s = RNG.integers(0, 4096, (3, 16, 16), dtype=np.uint16)
    with closing(repo.checkout(write=True)) as co:
        scans = co.add_ndarray_column('scans', shape=(16, 16), dtype=np.uint16, contains_subsamples=True)
        assert scans.contains_subsamples and scans.column_layout == 'nested'
        scans['patient1'] = {'axial': a, 'coronal': c}
        scans['patient2', 'sagittal'] = s
        scans['patient2']['axial'] = a
        assert len(scans) == 2 and 'patient1' in scans and ('patient1', 'axial') in scans
        assert ('patient1', 'sagittal') not in scans and 'patient3' not in scans
        assert list(scans.keys()) == ['patient1', 'patient2']
        assert list(scans['patient2'].keys()) == ['axial', 'sagittal'] and len(scans['patient2']) == 2
        assert np.array_equal(scans['patient1', 'axial'], a)
        assert np.array_equal(scans['patient1']['coronal'], c)
        assert scans.num_subsamples == 4
        assert "NestedSample 'patient1'" in repr(scans['patient1']) and '2 subsamples' in repr(
            scans['patient1']
        )
        first = co.commit('two patients')

        scans['patient1'] = {'sagittal': s}  # adds to the sample
        assert list(scans['patient1'].keys()) == ['axial', 'coronal', 'sagittal']
        del scans['patient1', 'coronal']
        del scans['patient2']
        assert list(scans.keys()) == ['patient1'] and len(scans) == 1
        assert list(scans['patient1'].keys()) == ['axial', 'sagittal']
        popped = scans.pop('patient1')
        assert set(popped) == {'axial', 'sagittal'} and np.array_equal(popped['sagittal'], s)
        assert len(scans) == 0
        scans['patient3'] = {'axial': a}
        co.commit('reshuffled')

    with closing(repo.checkout(commit=first)) as co:
        scans = co['scans']
        assert len(scans) == 2 and scans.num_subsamples == 4
        assert {k: set(v.keys()) for k, v in scans.items()} == {
            'patient1': {'axial', 'coronal'},
            'patient2': {'axial', 'sagittal'},
        }
        assert np.array_equal(scans['patient2']['sagittal'], s)
    with closing(repo.checkout()) as co:
        assert list(co['scans'].keys()) == ['patient3'] and len(co['scans']) == 1
        assert np.array_equal(co['scans', 'patient3']['axial'], a)


def test_nested_sample_deleted_and_written_again_in_one_staging(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_str_column('notes', contains_subsamples=True)
        col['p'] = {'a': 'old a', 'b': 'old b'}
        co.commit('p')
        col['p', 'c'] = 'staged c'
        del col['p']
        assert 'p' not in col and len(col) == 0
        col['p'] = {'d': 'new d'}
        assert dict(col['p'].items()) == {'d': 'new d'}
        co.commit('p replaced')
    with closing(repo.checkout()) as co:
        assert dict(co['notes']['p'].items()) == {'d': 'new d'}


def test_nested_column_writes_inside_a_with_block(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_bytes_column('b', contains_subsamples=True)
        with col:
            for i in range(20):
                col[i] = {'x': bytes([i]), 'y': bytes([i, i])}
            assert col[3, 'y'] == b'\x03\x03'
        col.update({'s': {'z': b'zz'}})
        assert len(col) == 21 and col.num_subsamples == 41
        co.commit('bytes')
    with closing(repo.checkout()) as co:
        assert co['b'][19]['y'] == b'\x13\x13' and co['b']['s']['z'] == b'zz'


def test_nested_sample_needs_a_dict(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_str_column('n', contains_subsamples=True)
        with pytest.raises(TypeError, match='dict of subkey'):
            col['p'] = 'not a dict'
        assert len(col) == 0


# ---------------------------------------------------------------------------------------- metadata


def test_metadata_is_versioned_with_commits(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('x')['k'] = 'v'
        co.metadata['source'] = 'mnist v1'
        co.metadata['license'] = 'cc-by'
        first = co.commit('with metadata')
        co.metadata['source'] = 'mnist v2'
        del co.metadata['license']
        assert dict(co.metadata.items()) == {'source': 'mnist v2'} and len(co.metadata) == 1
        with pytest.raises(KeyError):
            co.metadata['license']
        with pytest.raises(KeyError):
            del co.metadata['nope']
        with pytest.raises(TypeError, match='str'):
            co.metadata['n'] = 5  # type: ignore[assignment]
        co.commit('metadata changed')
    with closing(repo.checkout(commit=first)) as co:
        assert dict(co.metadata.items()) == {'license': 'cc-by', 'source': 'mnist v1'}
        assert list(co.metadata) == ['license', 'source']
        assert 'mnist v1' in repr(co.metadata)
    with closing(repo.checkout()) as co:
        assert co.metadata['source'] == 'mnist v2' and 'license' not in co.metadata


def test_a_metadata_change_alone_is_a_commit(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.metadata['a'] = '1'
        digest = co.commit('metadata only')
    with closing(repo.checkout()) as co:
        assert co.commit_hash == digest and co.metadata['a'] == '1'


# ------------------------------------------------------------------------------------ branches and history


def test_branches_are_created_listed_and_removed(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')['k'] = 'v0'
        c0 = co.commit('c0')
    assert repo.create_branch('merged-in') == ('merged-in', c0)
    with pytest.raises(BranchExists):
        repo.create_branch('merged-in')
    with closing(repo.checkout(write=True)) as co:
        co['s']['k'] = 'v1'
        c1 = co.commit('c1')
    head = repo.create_branch('old', base_commit=c0)
    assert head.digest == c0
    repo.create_branch('experiment')
    with closing(repo.checkout(write=True, branch='experiment')) as co:
        co['s']['k'] = 'experimental'
        co.commit('c2 on experiment')
    assert repo.list_branches() == ['experiment', 'master', 'merged-in', 'old']

    # 'experiment' holds the staging area now: it cannot go
    with pytest.raises(BranchInUse, match='staging area'):
        repo.remove_branch('experiment', force_delete=True)
    with closing(repo.checkout(write=True, branch='master')) as co:  # back on master
        assert co['s', 'k'] == 'v1'
    # merged branches go without force; an unmerged one needs force_delete
    assert repo.remove_branch('merged-in') == ('merged-in', c0)
    assert repo.remove_branch('old').digest == c0
    with pytest.raises(BranchInUse, match='force_delete=True'):
        repo.remove_branch('experiment')
    repo.remove_branch('experiment', force_delete=True)
    assert repo.list_branches() == ['master']
    with closing(repo.checkout()) as co:
        assert co.commit_hash == c1


def test_a_branch_cannot_start_before_the_first_commit(repo: Repository) -> None:
    from hangarfs import RefNotFound

    with pytest.raises(RefNotFound, match='no commits yet'):
        repo.create_branch('early')
    assert repo.list_branches() == ['master']


def test_a_writer_cannot_switch_branch_with_changes_staged(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')['k'] = 'v'
        co.commit('c')
    repo.create_branch('other')
    with closing(repo.checkout(write=True)) as co:
        co['s']['k2'] = 'staged on master'
    with pytest.raises(StagingDirty, match="branch 'master'"):
        repo.checkout(write=True, branch='other')
    with closing(repo.checkout(write=True)) as co:  # the lock was released; the staged change is intact
        assert co['s', 'k2'] == 'staged on master'
        co.reset_staging_area(force=True)
        assert 'k2' not in co['s']
    with closing(repo.checkout(write=True, branch='other')) as co:
        assert co.branch_name == 'other'


def test_log_lists_history_newest_first(repo: Repository, capsys: pytest.CaptureFixture[str]) -> None:
    repo.log()
    assert '(no commits yet)' in capsys.readouterr().out
    digests = []
    with closing(repo.checkout(write=True)) as co:
        col = co.add_str_column('s')
        for i in range(3):
            col[i] = str(i)
            digests.append(co.commit(f'commit number {i}'))
    repo.create_branch('dev')
    repo.log(show_user=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f'* {digests[2][:12]} <Ada ada@example.org> (HEAD -> master, dev) commit number 2'
    assert [line[2:14] for line in lines] == [d[:12] for d in reversed(digests)]
    contents = repo.log(return_contents=True)
    assert contents is not None
    assert contents['head'] == digests[2] and contents['order'] == digests[::-1]
    assert contents['ancestors'][digests[1]] == [digests[0]] and contents['ancestors'][digests[0]] == ['']
    assert contents['specs'][digests[0]]['commit_message'] == 'commit number 0'
    assert contents['specs'][digests[0]]['commit_user'] == 'Ada'
    repo.log(commit=digests[0][:8])
    assert capsys.readouterr().out.strip() == f'* {digests[0][:12]} commit number 0'


def test_summary_describes_a_commit(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('v', shape=(9, 9), dtype=np.float32, variable_shape=True)['a'] = np.ones(
            (2, 2), np.float32
        )
        co.add_str_column('nested', contains_subsamples=True)['p'] = {'x': 'y'}
        co.metadata['m'] = 'n'
        digest = co.commit('summary me')
    info = repo.summary(return_contents=True)
    assert info is not None
    assert info['commit'] == digest and info['branch'] == 'master' and info['commits'] == 1
    assert info['columns']['v'] == {
        'kind': 'ndarray',
        'layout': 'flat',
        'dtype': '<f4',
        'shape': (9, 9),
        'variable_shape': True,
        'backend': 'hdf5',
        'samples': 1,
    }
    assert info['columns']['nested']['layout'] == 'nested' and info['metadata_keys'] == 1
    assert info['last_commit']['message'] == 'summary me' and info['disk_bytes'] > 0


def test_commits_need_a_message(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')['k'] = 'v'
        with pytest.raises(ValueError, match='message'):
            co.commit('  ')
        co.commit('now with a message')


def test_commit_digests_depend_on_content_not_on_write_order(tmp_path: Path) -> None:
    roots = []
    for name, order in (('forward', range(300)), ('backward', range(299, -1, -1))):
        repo = new_repository(tmp_path / name)
        with closing(repo.checkout(write=True)) as co:
            col = co.add_ndarray_column('x', shape=(2,), dtype=np.int32)
            for i in order:
                col[i] = np.array([i, -i], np.int32)
            co.commit('same content')
            roots.append(co._snapshot.columns['x'].root)
    assert roots[0] == roots[1]


# ---------------------------------------------------------------------------------------- many readers


def test_many_readers_of_different_commits_and_branches_at_once(repo: Repository) -> None:
    commits = []
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', shape=(1,), dtype=np.int64)
        for gen in range(4):
            for i in range(10):
                col[i] = np.array([gen * 100 + i])
            commits.append(co.commit(f'generation {gen}'))
    repo.create_branch('frozen', base_commit=commits[1])
    readers = [repo.checkout(commit=c) for c in commits]
    readers += [repo.checkout(branch='frozen'), repo.checkout(branch='master'), repo.checkout()]
    writer = repo.checkout(write=True)
    writer['x'][0] = np.array([-1])  # staged changes are invisible to readers
    try:
        for gen, reader in enumerate(readers[:4]):
            assert reader.commit_hash == commits[gen]
            assert [int(v[0]) for v in reader['x'].values()] == [gen * 100 + i for i in range(10)]
        assert readers[4]['x', 9][0] == 109 and readers[4].branch_name == 'frozen'
        assert readers[5]['x', 0][0] == 300 and readers[6]['x', 0][0] == 300
        assert not readers[0].iswriteable and not readers[0].columns.iswriteable
        assert f"branch 'frozen' at commit {commits[1][:12]}" in repr(readers[4])
        assert commits[0][:12] in repr(readers[0]) and 'columns: x' in repr(readers[0])
    finally:
        writer.close()
        for reader in readers:
            reader.close()


def test_a_reader_keeps_its_commit_while_the_branch_moves(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')['k'] = 'before'
        co.commit('before')
    reader = repo.checkout()
    with closing(repo.checkout(write=True)) as co:
        co['s']['k'] = 'after'
        co.commit('after')
    assert reader['s', 'k'] == 'before'
    reader.close()
    with closing(repo.checkout()) as co:
        assert co['s', 'k'] == 'after'


def test_reading_a_branch_without_commits_says_so(repo: Repository) -> None:
    from hangarfs import RefNotFound

    with pytest.raises(RefNotFound, match='no commits yet'):
        repo.checkout()


# ---------------------------------------------------------------------------------------- change_backend


def test_change_backend_moves_future_writes_and_keeps_old_samples(repo: Repository) -> None:
    data = RNG.random((600, 1024), dtype=np.float32)  # 1.2 MB per half
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', prototype=data[0], backend='hdf5')
        col.update_batch(range(300), data[:300])
        co.commit('hdf5 half')
        col.change_backend('10')
        assert col.backend == '10' and col.backend_name == 'numpy' and col.backend_options == {}
        col.update_batch(range(300, 600), data[300:])
        co.commit('numpy half')
        col.change_backend('hdf5', {'complib': 'blosc:lz4', 'complevel': 1})
        assert co['x'].backend_options == {'complib': 'blosc:lz4', 'complevel': 1, 'shuffle': 'byte'}
        with pytest.raises(BackendError):
            col.change_backend('nowhere')
        assert co['x'].backend == '00'
        co.commit('back to hdf5 (lz4)')
    data_dir = Path(repo.path) / '.hangarfs' / 'data'
    assert list((data_dir / '00').glob('*.h5')) and list((data_dir / '10').glob('*.npy'))
    with closing(repo.checkout()) as co:
        assert co['x'].backend_name == 'hdf5'
        assert np.array_equal(co['x'].get_batch(range(600)), data)
    repo.verify_repo_integrity()


# ---------------------------------------------------------------------------------------- reprs


def test_reprs_are_informative(repo: Repository) -> None:
    assert repr(repo) == f'<Repository at {repo.path}: 1 branch(es) [master], master at (no commits)>'
    with closing(repo.checkout(write=True)) as co:
        assert repr(co).startswith('<WriterCheckout of ') and "branch 'master'" in repr(co)
        col = co.add_ndarray_column('images', shape=(28, 28), dtype=np.uint8)
        col[0] = np.zeros((28, 28), np.uint8)
        text = repr(col)
        for part in (
            'images',
            'Writeable                : True',
            'ndarray',
            'fixed_shape',
            'uint8',
            '(28, 28)',
        ):
            assert part in text
        assert 'Number of Samples        : 1' in text and 'Backend                  : hdf5 (00)' in text
        nested = co.add_str_column('notes', contains_subsamples=True)
        assert 'nested' in repr(nested) and 'Column Type              : str' in repr(nested)
        digest = co.commit('c')
    assert digest[:12] in repr(repo)
    assert repr(col) == "<Column 'images' of a closed checkout>"


# ---------------------------------------------------------------------------------------- another process


def test_data_is_readable_after_reopening_in_a_new_process(repo: Repository, children: Children) -> None:
    imgs, labs = mnist_like(50)
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', prototype=imgs[0]).update_batch(range(50), imgs)
        co.add_ndarray_column('labels', shape=(1,), dtype=np.int64, backend='numpy').update_batch(
            range(50), labs.reshape(-1, 1)
        )
        co.add_str_column('captions', contains_subsamples=True)['p'] = {'a': 'alpha', 'b': 'beta'}
        co.metadata['source'] = 'mnist v1'
        digest = co.commit('for another process')
    expected = repository_state(repo)
    out = children.run(
        """
        from contextlib import closing
        import json, sys
        from hangarfs import Repository
        from tests.helpers import checkout_contents
        repo = Repository(sys.argv[1])
        repo.verify_repo_integrity()
        with closing(repo.checkout()) as co:
            print(json.dumps({'head': co.commit_hash, 'contents': checkout_contents(co)}, default=list))
        """,
        repo.path,
    )
    seen = json.loads(out)
    assert seen['head'] == digest
    mine = json.loads(json.dumps(checkout_contents(repo.checkout()), default=list))
    assert seen['contents'] == mine
    assert expected['branches']['master'][0] == digest


def test_checkout_contents_fingerprints_everything(repo: Repository) -> None:
    # a guard for the helper the bad-input tests rely on: a change anywhere changes the fingerprint
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('x', shape=(2,), dtype=np.uint8)[0] = np.array([1, 2], np.uint8)
        co.add_str_column('n', contains_subsamples=True)['p'] = {'a': 'b'}
        co.metadata['m'] = '1'
        before = checkout_contents(co)
        co['x'][0] = np.array([1, 3], np.uint8)
        assert checkout_contents(co) != before
        co['x'][0] = np.array([1, 2], np.uint8)
        co['n']['p', 'a'] = 'c'
        assert checkout_contents(co) != before
        co['n']['p', 'a'] = 'b'
        co.metadata['m'] = '2'
        assert checkout_contents(co) != before
        co.metadata['m'] = '1'
        assert checkout_contents(co) == before


# ---------------------------------------------------------------------------------------- resources


def test_a_process_can_use_many_repositories_one_after_another(tmp_path: Path, children: Children) -> None:
    children.run(
        """
        from contextlib import closing
        import gc, sys
        from pathlib import Path
        from hangarfs import Repository
        for i in range(80):
            repo = Repository(Path(sys.argv[1]) / f'repo{i}', exists=False)
            repo.init(user_name='Ada', user_email='ada@example.org')
            with closing(repo.checkout(write=True)) as co:
                co.add_str_column('s')['k'] = str(i)
                co.commit('one')
            with closing(repo.checkout()) as co:
                assert co['s', 'k'] == str(i)
            del repo, co
            gc.collect()
        """,
        str(tmp_path),
        timeout=100,
    )
