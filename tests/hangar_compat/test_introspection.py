"""What Hangar 0.5 code reads about columns besides their data: ``co.columns.contains_remote_references``
and ``remote_sample_keys`` (public), the private views ``_samples`` / ``_subsamples`` / ``_enter_count``
that its own code and tests inspect, and invalid keys reported as "not suitable", in Hangar's words."""

from __future__ import annotations

from contextlib import closing

import numpy as np
import pytest

from hangarfs import Repository


def test_remote_reference_properties(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('flat', prototype=np.zeros(2))[0] = np.ones(2)
        co.add_str_column('nested', contains_subsamples=True)['s'] = {'a': 'x'}
        assert co.columns.contains_remote_references == {'flat': False, 'nested': False}
        assert co.columns.remote_sample_keys == {'flat': (), 'nested': ()}
        assert co['nested']['s'].remote_reference_keys == ()


def test_private_views_are_snapshots_of_the_column(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        flat = co.add_ndarray_column('flat', prototype=np.zeros(2))
        flat.update({0: np.ones(2), 'a': np.zeros(2)})
        nested = co.add_str_column('nested', contains_subsamples=True)
        nested.update({'s': {'a': 'x', 'b': 'y'}, 't': {0: 'z'}})
        assert list(flat._samples) == [0, 'a'] and flat._samples[0].nbytes == 16
        assert list(nested._samples) == ['s', 't'] and len(nested._samples['s']._subsamples) == 2
        with nested['s'] as sample:
            assert sample._enter_count == nested._enter_count == 1
        assert nested['s']._enter_count == 0
        nested['s']._subsamples.clear()  # a snapshot: changing it changes nothing stored
        assert list(nested['s'].keys()) == ['a', 'b']


@pytest.mark.parametrize('key', ['sample 1', 'bad!', -2, ('a', 'b'), '', '.x'])
def test_unsuitable_keys(repo: Repository, key: object) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_str_column('s')
        with pytest.raises(ValueError, match='is not suitable'):
            col[key] = 'v'  # type: ignore[index]
        with pytest.raises(ValueError, match='is not suitable'):
            co.add_str_column(key)  # type: ignore[arg-type]
        assert len(col) == 0
