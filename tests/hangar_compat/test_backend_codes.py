"""Item 10 of issue 15 (the backend part): Hangar 0.5's backend codes '01' (HDF5, fixed-shape
layout) and '31' (LMDB, bytes) are accepted as aliases of hangarfs's hdf5 ('00') and lmdb ('30')
backends, wherever a backend is chosen; the column then reports the backend it really uses."""

from __future__ import annotations

from contextlib import closing

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
