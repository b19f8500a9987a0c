"""Heterogeneous ndarray columns: every sample carries its own dtype and shape (model parameters)."""

from __future__ import annotations

import io
from contextlib import closing

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.engine.samples import ALLOWED_DTYPES
from hangarfs.errors import SchemaMismatch
from hangarfs.fs.view import CommitView

PARAMS = {
    'conv.weight': np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) / 7,
    'conv.bias': np.array([0.5, -0.25], dtype=np.float32),
    'bn.num_batches_tracked': np.array(12, dtype=np.int64),  # 0-d
    'bn.running_mean': np.zeros(2, dtype=np.float64),
    'emb.weight': np.arange(12, dtype=np.float16).reshape(3, 4),
    'mask': np.array([[True, False]]),
    'empty': np.zeros((0, 5), dtype=np.uint8),
}


def model_column(repo: Repository) -> str:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('model', contains_subsamples=True, heterogeneous=True)
        assert col.dtype is None and col.shape is None and col.variable_shape
        col['net'] = PARAMS
        return co.commit('a model')


def test_every_sample_keeps_its_own_dtype_and_shape(repo: Repository) -> None:
    digest = model_column(repo)
    with closing(repo.checkout(commit=digest)) as co:
        sample = co['model']['net']
        assert sorted(sample.keys()) == sorted(PARAMS)
        for name, expected in PARAMS.items():
            got = sample[name]
            assert got.dtype == expected.dtype and got.shape == expected.shape, name
            assert np.array_equal(got, expected), name
            info = co['model'].info('net', name)
            assert (
                info is not None and np.dtype(info.dtype) == expected.dtype and info.shape == expected.shape
            )
            assert info.nbytes == expected.nbytes
    repo.verify_repo_integrity()  # re-hashes each sample with its own dtype and shape


def test_every_supported_dtype_and_rank_round_trips(repo: Repository) -> None:
    rng = np.random.default_rng(5)
    values = {}
    for i, dt in enumerate(ALLOWED_DTYPES):
        shape = tuple(int(x) for x in rng.integers(1, 4, size=i % 5))
        values[dt.name] = np.asarray(rng.random(shape) * 100).astype(dt)
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('mixed', heterogeneous=True)
        co['mixed'].update(values)
        digest = co.commit('all dtypes')
    with closing(repo.checkout(commit=digest)) as co:
        for key, expected in values.items():
            got = co['mixed'][key]
            assert (
                got.dtype == expected.dtype and got.shape == expected.shape and np.array_equal(got, expected)
            )


def test_the_digest_covers_dtype_and_shape(repo: Repository) -> None:
    raw = np.arange(8, dtype=np.uint8)
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('m', heterogeneous=True)
        col['a'] = raw
        col['b'] = raw.view(np.int8)
        col['c'] = raw.reshape(2, 4)
        col['d'] = raw.copy()
        infos = {k: col.info(k) for k in 'abcd'}
    digests = {k: i.digest for k, i in infos.items() if i is not None}
    assert len({digests['a'], digests['b'], digests['c']}) == 3
    assert digests['a'] == digests['d']


def test_a_model_diff_is_a_per_subsample_diff(repo: Repository) -> None:
    first = model_column(repo)
    with closing(repo.checkout(write=True)) as co:
        co['model']['net', 'conv.bias'] = np.array([1.0, 2.0], dtype=np.float32)
        co['model']['net', 'extra'] = np.ones((2, 2), dtype=np.int32)
        del co['model']['net', 'mask']
        second = co.commit('fine-tuned')
    changes = repo.diff(first, second).columns['model']
    assert changes.mutated == {('net', 'conv.bias')}
    assert changes.added == {('net', 'extra')} and changes.deleted == {('net', 'mask')}


def test_the_mount_view_shows_each_parameter_as_its_own_npy(repo: Repository) -> None:
    digest = model_column(repo)
    view = CommitView(repo.store, digest)
    listing = view.list('/model/net')
    assert listing is not None
    assert sorted(n for n, _ in listing) == sorted(p + '.npy' for p in PARAMS)
    for name, expected in PARAMS.items():
        node = view.lookup(f'/model/net/{name}.npy')
        assert node is not None
        got = np.load(io.BytesIO(view.read(node, node.size, 0)))
        assert got.dtype == expected.dtype and got.shape == expected.shape and np.array_equal(got, expected)
    schema = view.lookup('/model/.schema.json')
    assert schema is not None and b'"dtype": null' in view.read(schema, schema.size, 0)


def test_unsupported_values_are_refused_and_nothing_is_staged(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('model', contains_subsamples=True, heterogeneous=True)
        with pytest.raises(SchemaMismatch, match='complex128'):
            col['net'] = {'ok': np.zeros(2), 'bad': np.zeros(2, dtype=np.complex128)}
        with pytest.raises(SchemaMismatch, match=r'numpy\.ndarray'):
            col['net'] = {'ok': np.zeros(2), 'bad': [1, 2]}
        with pytest.raises(SchemaMismatch, match='>f4'):
            col['net'] = {'swapped': np.zeros(2, dtype='>f4')}
        assert 'net' not in col
        with pytest.raises(ValueError, match='takes no shape'):
            co.add_ndarray_column('other', shape=(3,), dtype='f4', heterogeneous=True)
