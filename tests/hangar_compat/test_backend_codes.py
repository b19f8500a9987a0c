"""Item 10 of issue 15 (the backend part): Hangar 0.5's backend codes '01' (HDF5, fixed-shape
layout) and '31' (LMDB, bytes) are accepted as aliases of hangarfs's hdf5 ('00') and lmdb ('30')
backends, wherever a backend is chosen; the column then reports the backend it really uses."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.errors import BackendError


def test_hangar_codes_choose_the_matching_backends(repo: Repository) -> None:
    data = np.random.default_rng(1).random((40, 5, 7))
    with closing(repo.checkout(write=True)) as co:
        fixed = co.add_ndarray_column('fixed', prototype=data[0], backend='01')
        blobs = co.add_bytes_column('blobs', backend='31')
        nested = co.add_ndarray_column('nested', prototype=data[0], backend='01', contains_subsamples=True)
        assert (fixed.backend, blobs.backend, nested.backend) == ('00', '30', '00')
        assert fixed.backend_name == 'hdf5' and blobs.backend_name == 'lmdb'
        fixed.update_batch(list(range(40)), data)
        blobs[0] = b'\x00raw'
        nested['s'] = {0: data[0]}
        other = co.add_ndarray_column('other', prototype=data[0], backend='10')
        other.change_backend('01')
        assert other.backend == '00'
        co.commit('hangar codes')
    with closing(repo.checkout()) as co:
        assert np.array_equal(co['fixed'].get_batch(list(range(40))), data)
        assert co['blobs', 0] == b'\x00raw' and np.array_equal(co['nested', 's', 0], data[0])
    assert repo.verify_repo_integrity() is True


@pytest.mark.parametrize('code', ['02', '50', 'hdf5_01', ''])
def test_other_codes_are_still_refused(repo: Repository, code: str) -> None:
    with closing(repo.checkout(write=True)) as co, pytest.raises(BackendError, match="got '"):
        co.add_ndarray_column('x', prototype=np.zeros(3), backend=code)


FILTERS = {'gzip': h5py.h5z.FILTER_DEFLATE, 'lzf': h5py.h5z.FILTER_LZF}


@pytest.mark.parametrize(
    'options',
    [
        {'complib': 'gzip', 'complevel': 4, 'shuffle': 'byte'},  # as Hangar 0.5 documents its hdf5 options
        {'complib': 'lzf', 'complevel': None, 'shuffle': 'byte'},  # Hangar's fallback without blosc
    ],
)
def test_hangar_gzip_and_lzf_options_store_and_read_back(repo: Repository, options: dict[str, Any]) -> None:
    """h5py's built-in filters, chosen as Hangar code chooses them; the data reads back exactly."""
    data = np.random.default_rng(2).integers(0, 9, size=(2000, 28, 28), dtype=np.uint8)
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('images', prototype=data[0], backend='01', backend_options=options)
        assert col.backend_options['complib'] == options['complib']
        col.update_batch(list(range(2000)), data)
        co.commit('filtered')
        (h5file,) = Path(repo.path, '.hangarfs', 'data', '00').glob('*.h5')
        with h5py.File(h5file, 'r', locking=False) as f:  # a plain HDF5 reader decodes it, no plugin
            plist = f['heap'].id.get_create_plist()
            assert plist.get_filter(0)[0] == FILTERS[str(options['complib'])]
            assert f['heap'].shape == (data.nbytes,)
        col = co['images']
        col.change_backend('00', backend_options={'complib': 'blosc:zstd'})
        col[2000] = data[0]
        co.commit('back to blosc for new samples')
    with closing(repo.checkout()) as co:
        assert np.array_equal(co['images'].get_batch(list(range(2000))), data)
        assert np.array_equal(co['images'][17], data[17])
    assert repo.verify_repo_integrity() is True
