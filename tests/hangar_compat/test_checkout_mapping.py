"""Item 6 of issue 15: a checkout is a mapping of column name -> column, reads go by path, and
``co.log`` / ``repo.log(return_contents=True)`` answer as Hangar 0.5 documents (its ``GetMixin`` and
``CheckoutDictIteration`` docstrings, and ``summarize.log``)."""

from __future__ import annotations

from contextlib import closing

import numpy as np
import pytest

from hangarfs import Repository


def arr(i: int) -> np.ndarray:
    return np.full(3, i, np.int32)


@pytest.fixture
def dset(repo: Repository) -> Repository:
    with closing(repo.checkout(write=True)) as co:
        foo = co.add_ndarray_column('foo', prototype=arr(0))
        bar = co.add_ndarray_column('bar', prototype=arr(0))
        nested = co.add_ndarray_column('nested_col', prototype=arr(0), contains_subsamples=True)
        for i in range(3):
            foo[str(i)] = arr(i)
            bar[str(i)] = arr(10 + i)
        nested['sample_1'] = {'subsample_0': arr(100), 'subsample_1': arr(101)}
        co.commit('first')
    return repo


@pytest.mark.parametrize('write', [False, True])
def test_a_checkout_is_a_mapping_of_columns(dset: Repository, write: bool) -> None:
    with closing(dset.checkout(write=write)) as co:
        assert len(co) == 3 and 'foo' in co and 'nope' not in co
        assert list(co) == list(co.keys()) == ['bar', 'foo', 'nested_col']
        assert [c.column for c in co.values()] == ['bar', 'foo', 'nested_col']
        assert [(n, c.column) for n, c in co.items()] == [(n, n) for n in ('bar', 'foo', 'nested_col')]
        assert co['foo'] is co.columns['foo']


@pytest.mark.parametrize('write', [False, True])
def test_reads_by_path(dset: Repository, write: bool) -> None:
    with closing(dset.checkout(write=write)) as co:
        assert np.array_equal(co['foo', '1'], arr(1))
        one, two, three = co[('foo', '1'), ('foo', '2'), ('bar', '0')]
        assert np.array_equal(one, arr(1)) and np.array_equal(two, arr(2)) and np.array_equal(three, arr(10))
        keys = [(col, str(s)) for s in range(2) for col in ['foo', 'bar']]
        assert [int(v[0]) for v in co[keys]] == [0, 10, 1, 11]
        assert [int(v[0]) for v in co[[('foo', '2')] * 2]] == [2, 2]
        assert np.array_equal(co['nested_col', 'sample_1', 'subsample_0'], arr(100))
        assert np.array_equal(co['nested_col', 'sample_1']['subsample_1'], arr(101))
        mixed = co[('nested_col', 'sample_1', 'subsample_1'), ('foo', '0')]
        assert int(mixed[0][0]) == 101 and int(mixed[1][0]) == 0


def test_missing_keys_raise_key_error_or_give_the_default(dset: Repository) -> None:
    with closing(dset.checkout()) as co:
        with pytest.raises(KeyError, match='DOES_NOT_EXIST'):
            co['foo', 'DOES_NOT_EXIST']
        with pytest.raises(KeyError):
            co[('foo', '1'), ('foo', 'DOES_NOT_EXIST')]
        with pytest.raises(KeyError):
            co['no_such_column', '1']
        assert co.get(('foo', 'DOES_NOT_EXIST')) is None
        assert co.get(('foo', 'DOES_NOT_EXIST'), default=-1) == -1
        got = co.get([('foo', '1'), ('foo', 'DOES_NOT_EXIST'), ('nested_col', 'sample_1', 'nope')])
        assert np.array_equal(got[0], arr(1)) and got[1:] == [None, None]
        with pytest.raises(KeyError):
            co.get(('foo', 'DOES_NOT_EXIST'), except_missing=True)
        with pytest.raises(TypeError):
            co[5]


def test_column_lookups_of_non_keys_are_dict_like(dset: Repository) -> None:
    with closing(dset.checkout()) as co:
        col = co['foo']
        with pytest.raises(KeyError):
            col[('1', '2')]  # hashable, cannot be a key: absent
        assert col.get(('1', '2')) is None and ('1', '2') not in col and 1.5 not in col
        with pytest.raises(TypeError, match='cannot be a key'):
            col[['1', '2']]  # unhashable, as a dict says
        with pytest.raises(TypeError):
            col.get(np.zeros(3))


def test_co_log_starts_at_the_checkout(dset: Repository, capsys: pytest.CaptureFixture[str]) -> None:
    first = dset.log(return_contents=True)['head']  # type: ignore[index]
    with closing(dset.checkout(write=True)) as co:
        co['foo']['9'] = arr(9)
        second = co.commit('second')
        assert co.log(return_contents=True)['head'] == second  # type: ignore[index]
    with closing(dset.checkout(commit=first)) as old:
        info = old.log(return_contents=True)
        assert info is not None and info['head'] == first and info['order'] == [first]
        old.log()
        assert capsys.readouterr().out.strip().endswith(' first')
        assert old.log(branch='master', return_contents=True)['head'] == second  # type: ignore[index]


def test_repo_log_contents_have_hangars_keys(dset: Repository) -> None:
    first = dset.log(return_contents=True)['head']  # type: ignore[index]
    dset.create_branch('dev')
    with closing(dset.checkout(write=True, branch='dev')) as co:
        co['foo']['d'] = arr(7)
        on_dev = co.commit('on dev')
    with closing(dset.checkout(write=True, branch='master')) as co:
        co['bar']['m'] = arr(8)
        on_master = co.commit('on master')
    merge = dset.merge('merge dev', master_branch='master', dev_branch='dev')
    info = dset.log(branch='master', return_contents=True)
    assert info is not None
    assert set(info) >= {'head', 'order', 'ancestors', 'specs', 'branch_heads'}
    assert info['head'] == merge and info['order'][0] == merge and info['order'][-1] == first
    assert info['ancestors'][first] == ['']  # the root, as in Hangar
    assert info['ancestors'][merge] == [on_master, on_dev]
    spec = info['specs'][merge]
    assert set(spec) == {'commit_message', 'commit_time', 'commit_user', 'commit_email'}
    assert spec['commit_message'] == 'merge dev' and spec['commit_user'] == 'Ada'
    assert spec['commit_email'] == 'ada@example.org' and isinstance(spec['commit_time'], float)
    assert info['branch_heads'] == {merge: ['master'], on_dev: ['dev']}
