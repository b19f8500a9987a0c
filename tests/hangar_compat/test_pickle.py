"""Item 9 of issue 15: read-only columns pickle, as Hangar 0.5 documents ("This object can be
serialized -- pickled -- for parallel processing / reading if opened in a read-only checkout ...
Attempts to serialize objects opened in write-enabled checkouts ... will raise a PermissionError").
The pickle names the repository path, the commit and the column; never an open environment."""

from __future__ import annotations

import multiprocessing
import pickle
from contextlib import closing

import numpy as np
import pytest

from hangarfs import Repository


def value(i: int) -> np.ndarray:
    return np.full((5, 7), i, np.uint16)


@pytest.fixture
def committed(repo: Repository) -> tuple[Repository, str]:
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('flat', prototype=value(0)).update({i: value(i) for i in range(8)})
        co.add_ndarray_column('big', prototype=np.zeros(4096, np.float32)).update(
            {i: np.full(4096, i, np.float32) for i in range(4)}
        )
        co.add_ndarray_column('nested', prototype=value(0), contains_subsamples=True).update(
            {'s': {0: value(100), 'x': value(101)}}
        )
        co.add_str_column('strs').update({'a': 'alpha'})
        digest = co.commit('data')
    return repo, digest


# 'fork' also works once engine/lmdbenv closes the LMDB handles a forked child inherits (branch
# `loaders`, commit aa2548f: py-lmdb refuses to reopen them otherwise); fresh interpreters here.
@pytest.mark.parametrize('method', ['spawn', 'forkserver'])
def test_pool_map_of_a_read_only_column(committed: tuple[Repository, str], method: str) -> None:
    repo, _ = committed
    with closing(repo.checkout()) as co:
        for name, keys in (('flat', list(range(8))), ('big', [3, 0, 2])):
            col = co.columns[name]
            with multiprocessing.get_context(method).Pool(2) as pool:
                got = pool.map(col.get, keys)
            for k, v in zip(keys, got):
                assert np.array_equal(v, col[k]) and v.dtype == col[k].dtype


def test_the_pickle_names_path_commit_and_column(committed: tuple[Repository, str]) -> None:
    repo, digest = committed
    with closing(repo.checkout()) as co:
        payload = pickle.dumps(co['flat'], protocol=pickle.HIGHEST_PROTOCOL)
    assert len(payload) < 400 and b'Environment' not in payload and b'lmdb' not in payload
    assert repo.path.encode() in payload and digest.encode() in payload and b'flat' in payload
    copy = pickle.loads(payload)  # the checkout it came from is closed: the copy has its own
    assert copy.column == 'flat' and not copy.iswriteable and len(copy) == 8
    assert np.array_equal(copy[5], value(5))


def test_a_pickled_column_keeps_its_commit(committed: tuple[Repository, str]) -> None:
    repo, _ = committed
    with closing(repo.checkout()) as co:
        payload = pickle.dumps(co['strs'])
    with closing(repo.checkout(write=True)) as co:
        co['strs']['a'] = 'changed'
        co.commit('later')
    assert pickle.loads(payload)['a'] == 'alpha'  # the commit named in the pickle, not the branch head


def test_nested_columns_and_samples_pickle(committed: tuple[Repository, str]) -> None:
    repo, _ = committed
    with closing(repo.checkout()) as co:
        col = pickle.loads(pickle.dumps(co['nested']))
        sample = pickle.loads(pickle.dumps(co['nested']['s']))
    assert np.array_equal(col['s', 'x'], value(101))
    assert sample.sample == 's' and np.array_equal(sample[0], value(100))


def test_writer_columns_refuse(committed: tuple[Repository, str]) -> None:
    repo, _ = committed
    with closing(repo.checkout(write=True)) as co:
        for name in ('flat', 'nested'):
            with pytest.raises(PermissionError, match='Method "__getstate__" cannot'):
                pickle.dumps(co[name])
        with pytest.raises(PermissionError):
            pickle.dumps(co['nested']['s'])


def test_a_closed_checkouts_column_refuses(committed: tuple[Repository, str]) -> None:
    repo, _ = committed
    co = repo.checkout()
    col = co['flat']
    co.close()
    with pytest.raises(PermissionError, match='closed'):
        pickle.dumps(col)
