"""``co.reset_staging_area()`` as Hangar 0.5 documents it: a hard reset of the staging area to the
branch head ("If no changes have been made to the staging area" it raises RuntimeError)."""

from __future__ import annotations

from contextlib import closing

import numpy as np
import pytest

from hangarfs import Repository


def test_reset_discards_what_is_staged(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('x', prototype=np.zeros(3))[0] = np.ones(3)
        head = co.commit('first')
        with pytest.raises(RuntimeError, match='No changes made in staging area'):
            co.reset_staging_area()
        co['x'][1] = np.ones(3)
        co.add_str_column('new')['k'] = 'v'
        del co['x'][0]
        assert co.reset_staging_area() == head
        assert co.diff.status() == 'CLEAN' and list(co['x'].keys()) == [0] and 'new' not in co
        co['x'][2] = np.zeros(3)  # the checkout stays usable
        assert co.commit('second') != head


def test_column_objects_of_a_reset_staging_area_are_gone(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('x', prototype=np.zeros(3))[0] = np.ones(3)
        co.commit('first')
        staged_only = co.add_ndarray_column('arange', prototype=np.arange(5))
        staged_only['0'] = np.arange(5)
        committed = co['x']
        co.reset_staging_area()
        for old in (staged_only, committed):
            with pytest.raises(PermissionError, match='staging area that was reset'):
                old[0]
            assert 'reset staging area' in repr(old)
        with pytest.raises(KeyError):
            co.columns['arange']
        assert np.array_equal(co['x'][0], np.ones(3))  # got again, the column works


def test_no_backend_change_inside_a_block(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', prototype=np.zeros(300), backend='hdf5')
        with col, pytest.raises(RuntimeError, match='inside a `with` block'):
            col.change_backend('numpy')
        assert col.backend == '00'
        col.change_backend('numpy')
        assert col.backend == '10'
