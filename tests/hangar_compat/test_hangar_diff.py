"""Item 11 of issue 15: ``co.diff.branch / commit / staged`` answer in Hangar 0.5's shape,
``DiffAndConflicts(diff=DiffOut(added, deleted, mutated: Changes(schema, samples)),
conflict=Conflicts(t1, t21, t22, t3, conflict))``, "as if we are to merge dev into master" (Hangar's
``Repository.diff`` docstring), beside hangarfs's own two-way result."""

from __future__ import annotations

from contextlib import closing

import numpy as np
import pytest

from hangarfs import MergeConflictError, Repository
from hangarfs.diff import (
    ColumnSchemaKey,
    Conflicts,
    DiffAndConflicts,
    DiffOut,
    FlatColumnDataKey,
    NestedColumnDataKey,
)
from hangarfs.engine.diff import DiffResult


def arr(i: int) -> np.ndarray:
    return np.full(50, i, np.int64)


@pytest.fixture
def branched(repo: Repository) -> Repository:
    """master: dummy 0..9 and a nested column; testbranch adds 10..19 (as Hangar's repo_1_br_no_conf)."""
    with closing(repo.checkout(write=True, branch='master')) as co:
        co.add_ndarray_column('dummy', prototype=arr(0)).update({str(i): arr(i) for i in range(10)})
        co.add_ndarray_column('nest', prototype=arr(0), contains_subsamples=True)['s'] = {'a': arr(1)}
        co.commit('first commit adding dummy data')
    repo.create_branch('testbranch')
    with closing(repo.checkout(write=True, branch='testbranch')) as co:
        co['dummy'].update({str(i): arr(i) for i in range(10, 20)})
        co.commit('first commit on test branch')
    return repo


@pytest.mark.parametrize('writer', [False, True])
def test_fast_forward_shape(branched: Repository, writer: bool) -> None:
    with closing(branched.checkout(write=True, branch='testbranch')) as co:
        co['dummy']['1'] = arr(100)
        del co['dummy']['2']
        co['nest']['s', 'b'] = arr(2)
        dev = co.commit('mutation and removal')
    with closing(branched.checkout(write=writer, branch='master')) as co:
        result = co.diff.branch('testbranch')
        diff, conflict = result  # a 2-tuple, as Hangar's NamedTuple
        assert isinstance(diff, DiffOut) and isinstance(conflict, Conflicts) and result[1] is conflict
        assert result == co.diff.commit(dev) == DiffAndConflicts(diff, conflict)
        assert conflict.conflict is False and not any(conflict[:4][i].samples for i in range(4))
        added = [k for k in diff.added.samples if k.column == 'dummy']
        assert sorted(int(k.sample) for k in added) == list(range(10, 20))
        assert diff.mutated.samples == (FlatColumnDataKey('dummy', '1'),)
        assert diff.deleted.samples == (FlatColumnDataKey('dummy', '2'),)
        assert NestedColumnDataKey('nest', 's', 'b') in diff.added.samples
        assert diff.added.schema == diff.deleted.schema == diff.mutated.schema == {}
        for key in diff.added.samples:
            assert key.layout in ('flat', 'nested') and key[0] == key.column


def test_all_four_kinds_of_conflict_agree_with_merge(branched: Repository) -> None:
    with closing(branched.checkout(write=True, branch='master')) as co:
        co['dummy']['55'] = arr(123)  # t1: added on both, different values
        del co['dummy']['6']  # t21: deleted on master, changed on dev
        co['dummy']['7'] = arr(123)  # t22: changed on master, deleted on dev
        co['dummy']['8'] = arr(123)  # t3: changed on both, differently
        co['dummy']['9'] = arr(999)  # the same change on both sides: no conflict
        co['nest']['s', 'a'] = arr(5)  # t3 in a nested column
        co.commit('master side')
    with closing(branched.checkout(write=True, branch='testbranch')) as co:
        co['dummy']['55'] = arr(234)
        co['dummy']['6'] = arr(234)
        del co['dummy']['7']
        co['dummy']['8'] = arr(234)
        co['dummy']['9'] = arr(999)
        co['nest']['s', 'a'] = arr(6)
        co.commit('dev side')
    with closing(branched.checkout(branch='master')) as co:
        conflicts = co.diff.branch('testbranch').conflict
    assert conflicts.conflict is True
    assert conflicts.t1.samples == (FlatColumnDataKey('dummy', '55'),)
    assert conflicts.t21.samples == (FlatColumnDataKey('dummy', '6'),)
    assert conflicts.t22.samples == (FlatColumnDataKey('dummy', '7'),)
    assert conflicts.t3.samples == (FlatColumnDataKey('dummy', '8'), NestedColumnDataKey('nest', 's', 'a'))
    with pytest.raises(MergeConflictError) as info:
        branched.merge('try', master_branch='master', dev_branch='testbranch')
    merge_keys = {(c.column, c.key) for c in info.value.conflicts}
    diff_keys = {(k.column, k[1] if len(k) == 2 else (k[1], k[2])) for t in conflicts[:4] for k in t.samples}
    assert merge_keys == diff_keys


def test_column_conflicts_are_schema_entries(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('c1', shape=(5, 7), dtype=np.float64)
        co.add_ndarray_column('c2', shape=(5, 7), dtype=np.float64)
        co.add_ndarray_column('c3', shape=(5, 7), dtype=np.float64)
        co.commit('three columns')
    repo.create_branch('dev')
    with closing(repo.checkout(write=True, branch='master')) as co:
        for name in ('c1', 'c2', 'c3'):
            del co.columns[name]
        co.add_ndarray_column('c2', shape=(5, 7), dtype=np.float32)  # replaced on master
        co.add_ndarray_column('c3', shape=(7, 7), dtype=np.float64)
        co.add_ndarray_column('new', shape=(2,), dtype=np.uint8)
        co.commit('master')
    with closing(repo.checkout(write=True, branch='dev')) as co:
        for name in ('c1', 'c2', 'c3'):
            del co.columns[name]
        co.add_ndarray_column('c1', shape=(5, 7), dtype=np.float32)  # replaced on dev
        co.add_ndarray_column('c3', shape=(5, 7), dtype=np.float32)
        co.add_ndarray_column('new', shape=(3,), dtype=np.uint8)
        co.commit('dev')
    with closing(repo.checkout(branch='master')) as co:
        conflicts = co.diff.branch('dev')[1]
    assert list(conflicts.t21.schema) == [ColumnSchemaKey('c1', 'flat')]  # deleted here, changed there
    assert list(conflicts.t22.schema) == [ColumnSchemaKey('c2', 'flat')]
    assert list(conflicts.t3.schema) == [ColumnSchemaKey('c3', 'flat')]
    assert list(conflicts.t1.schema) == [ColumnSchemaKey('new', 'flat')]
    assert all(len(v.digest) == 64 for t in conflicts[:4] for v in t.schema.values())


def test_the_writer_previews_with_its_staged_changes(branched: Repository) -> None:
    with closing(branched.checkout(write=True, branch='testbranch')) as co:
        co['dummy']['3'] = arr(33)
        co.commit('dev changes 3')
    with closing(branched.checkout(write=True, branch='master')) as co:
        co['dummy']['0'] = arr(-1)
        co.commit('master diverges: a three-way merge')
        co['dummy']['3'] = arr(44)  # staged, not committed
        co.add_str_column('notes')['n'] = 'x'
        staged = co.diff.staged()
        assert staged.conflict == Conflicts(*staged.conflict[:4], False) and not staged.conflict.conflict
        assert staged.diff.mutated.samples == (FlatColumnDataKey('dummy', '3'),)
        assert 'notes' in [k.column for k in staged.diff.added.schema]
        assert FlatColumnDataKey('notes', 'n') in staged.diff.added.samples
        preview = co.diff.branch('testbranch')
        assert preview.conflict.t3.samples == (FlatColumnDataKey('dummy', '3'),)  # staged vs dev
    with closing(branched.checkout(branch='master')) as reader:  # the committed master: no conflict
        assert reader.diff.branch('testbranch').conflict.conflict is False


def test_the_same_object_is_hangarfs_result(branched: Repository) -> None:
    with closing(branched.checkout(branch='master')) as co:
        view = co.diff.branch('testbranch')
        assert isinstance(view.changes, DiffResult)
        assert view.columns['dummy'].added == {str(i) for i in range(10, 20)}
        assert view.b == branched.log(branch='testbranch', return_contents=True)['head']  # type: ignore[index]
        assert bool(view) and view.to_dict()['columns']['dummy']['added'][0] == '10'
        assert not co.diff.commit(co.commit_hash)  # nothing differs from itself
        with pytest.raises(ValueError):
            co.diff.branch('wrong_branch_name')
        with pytest.raises(ValueError):
            co.diff.commit('0' * 64)
    with closing(branched.checkout(branch='master')) as co, pytest.raises(AttributeError):
        co.diff.status()  # type: ignore[attr-defined]
