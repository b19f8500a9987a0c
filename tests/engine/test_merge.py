"""Merge (issue 3): fast-forward, three-way merges against the merge base, conflicts, criss-cross."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from hangarfs import MergeConflictError, Repository
from hangarfs.engine.mergebase import merge_bases
from hangarfs.errors import MergeError, RefNotFound, StagingDirty, WriterLockHeld
from tests.engine.history_model import (
    SETTINGS,
    ModelHistory,
    ScratchRepositories,
    cells,
    commit_ops,
    diverge,
    model_merge,
    new_repository_with,
    ops,
    state_at,
    states,
)
from tests.helpers import USER, release_repositories, repository_state


@pytest.fixture
def scratch() -> Iterator[Any]:
    repos = ScratchRepositories('hangarfs-merge-')
    yield repos.new
    repos.close()


def conflict_set(err: MergeConflictError) -> set[tuple[Any, Any, str]]:
    return {(c.column, c.key, c.kind) for c in err.conflicts}


# ---------------------------------------------------------------------------------------- against a model


@SETTINGS
@given(base=states, ours=ops, theirs=ops, strategy=st.sampled_from([None, 'ours', 'theirs']))
def test_merge_equals_the_models_merge(
    scratch: Any, base: Any, ours: Any, theirs: Any, strategy: Any
) -> None:
    repo = scratch()
    first, m, d, master_model, dev_model = diverge(repo, base, ours, theirs)
    expected, conflicts = model_merge(base, master_model, dev_model, strategy)
    if conflicts and strategy is None and m != first and d != first:
        before = repository_state(repo)
        with pytest.raises(MergeConflictError) as info:
            repo.merge('merge dev', dev_branch='dev')
        assert conflict_set(info.value) == conflicts
        for c in info.value.conflicts:  # each side's digest is there exactly when the side has the value
            assert (c.master is None) == (c.kind == 'delete/mutate')
            assert (c.dev is None) == (c.kind == 'mutate/delete')
            assert (c.base is None) == (c.kind == 'add/add')
        assert repository_state(repo) == before  # nothing changed
        return
    head = repo.merge('merge dev', dev_branch='dev', strategy=strategy)
    assert repo.store.refs.branch_head('master') == head
    assert state_at(repo, head) == expected
    record = repo.store.objects.commit(head)
    if d == first:
        assert head == m  # dev has nothing master lacks
    elif m == first:
        assert head == d  # fast-forward
    else:
        assert record.parents == (m, d)
        if strategy is not None and conflicts:
            assert f"Conflicts resolved with strategy '{strategy}'" in record.message
            assert f': {len(conflicts)}\n' in record.message + '\n'


few_ops = st.lists(st.tuples(cells, st.sampled_from([None, 0, 1, 2])), min_size=1, max_size=3)


class MergeHistory(RuleBasedStateMachine):
    """Two branches that change and merge into each other, also from older commits (criss-cross)."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix='hangarfs-merges-'))
        self.repo = Repository(self.tmp / 'repo', exists=False)
        self.repo.init(**USER)
        self.history = ModelHistory()
        self.heads: dict[str, str] = {}

    def teardown(self) -> None:
        release_repositories(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)

    @initialize(base=states)
    def start(self, base: Any) -> None:
        first = new_repository_with(self.repo, base)
        self.history.add(first, (), base)
        self.repo.create_branch('dev')
        self.heads = {'master': first, 'dev': first}

    @rule(branch=st.sampled_from(['master', 'dev']), changes=few_ops)
    def change(self, branch: str, changes: Any) -> None:
        model = dict(self.history.states[self.heads[branch]])
        commit = commit_ops(self.repo, branch, changes, model, f'change {branch}')
        if commit != self.heads[branch]:
            self.history.add(commit, (self.heads[branch],), model)
            self.heads[branch] = commit

    @rule(master_changes=few_ops, dev_changes=few_ops)
    def change_both(self, master_changes: Any, dev_changes: Any) -> None:
        self.change('master', master_changes)
        self.change('dev', dev_changes)

    @rule(
        into=st.sampled_from(['master', 'dev']),
        data=st.data(),
        strategy=st.sampled_from([None, 'ours', 'theirs']),
        via_writer=st.booleans(),
    )
    def merge(self, into: str, data: st.DataObject, strategy: Any, via_writer: bool) -> None:
        other = 'dev' if into == 'master' else 'master'
        # the other branch's head, or one of its commits this branch lacks (merging an older one of
        # those, on each side, makes a criss-cross)
        missing = self.history.ancestors([self.heads[other]]) - self.history.ancestors([self.heads[into]])
        if not missing:  # already merged: nothing changes
            assert self._merge(into, other, strategy, via_writer) == self.heads[into]
            return
        # in order of creation: digests depend on commit times, and draws must not
        source = data.draw(st.sampled_from([c for c in self.history.states if c in missing]))
        ref = other if source == self.heads[other] else source
        ours = self.heads[into]
        if source in self.history.ancestors([ours]):
            assert self._merge(into, ref, strategy, via_writer) == ours
            return
        if ours in self.history.ancestors([source]):
            assert self._merge(into, ref, strategy, via_writer) == source
            self.heads[into] = source
            return
        bases = self.history.merge_bases([ours], [source])
        parents_of = self.repo.store.objects.commit
        assert merge_bases(lambda c: parents_of(c).parents, [ours], [source]) == bases
        base = self.history.base_state(bases)
        expected, conflicts = model_merge(
            base, self.history.states[ours], self.history.states[source], strategy
        )
        if conflicts and strategy is None:
            with pytest.raises(MergeConflictError) as info:
                self._merge(into, ref, strategy, via_writer)
            assert conflict_set(info.value) == conflicts
            return
        head = self._merge(into, ref, strategy, via_writer)
        assert self.repo.store.objects.commit(head).parents == (ours, source)
        assert state_at(self.repo, head) == expected
        self.history.add(head, (ours, source), expected)
        self.heads[into] = head

    def _merge(self, into: str, ref: str, strategy: Any, via_writer: bool) -> str:
        if not via_writer:
            return self.repo.merge(f'merge {ref}', master_branch=into, dev_branch=ref, strategy=strategy)
        with closing(self.repo.checkout(write=True, branch=into)) as co:
            head = co.merge(f'merge {ref}', dev_branch=ref, strategy=strategy)
            assert co.commit_hash == head
            return head

    @invariant()
    def branches_are_where_the_model_says(self) -> None:
        for name, head in self.heads.items():
            assert self.repo.store.refs.branch_head(name) == head


MergeHistory.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_merges_of_merges_and_criss_crosses = MergeHistory.TestCase


# ---------------------------------------------------------------------------------------- merge bases


@st.composite
def dags(draw: st.DrawFn) -> dict[str, tuple[str, ...]]:
    """A random commit graph: commit i has 0 to 2 parents among the commits before it."""
    n = draw(st.integers(1, 14))
    graph: dict[str, tuple[str, ...]] = {'c0': ()}
    for i in range(1, n):
        parents = draw(st.lists(st.integers(0, i - 1), min_size=1, max_size=2, unique=True))
        graph[f'c{i}'] = tuple(f'c{p}' for p in parents)
    return graph


@settings(max_examples=200, deadline=None)
@given(graph=dags(), data=st.data())
def test_merge_bases_are_the_lowest_common_ancestors(graph: dict[str, tuple[str, ...]], data: Any) -> None:
    model = ModelHistory()
    for c, parents in graph.items():
        model.add(c, parents, {})
    a = data.draw(st.sampled_from(sorted(graph)))
    b = data.draw(st.sampled_from(sorted(graph)))
    assert merge_bases(graph.__getitem__, [a], [b]) == model.merge_bases([a], [b])


# ---------------------------------------------------------------------------------------- examples


@pytest.fixture
def stocked(repo: Repository) -> Repository:
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(4,), dtype=np.uint8).update(
            {i: np.full(4, i, np.uint8) for i in range(20)}
        )
        co.add_str_column('labels').update({i: str(i % 10) for i in range(20)})
        co.metadata['source'] = 'synthetic'
        co.commit('first')
    repo.create_branch('dev')
    return repo


def change(repo: Repository, branch: str, fn: Any, message: str = 'change') -> str:
    with closing(repo.checkout(write=True, branch=branch)) as co:
        fn(co)
        return co.commit(message)


def test_fast_forward_moves_the_branch_and_makes_no_commit(stocked: Repository) -> None:
    dev = change(stocked, 'dev', lambda co: co['labels'].update({i: 'x' for i in range(5)}))
    assert stocked.merge('merge dev', dev_branch='dev') == dev
    assert stocked.store.refs.branch_head('master') == dev
    with closing(stocked.checkout()) as co:
        assert co['labels'][3] == 'x'
    # merging again changes nothing, in either direction
    assert stocked.merge('again', dev_branch='dev') == dev
    assert stocked.merge('back', master_branch='dev', dev_branch='master') == dev


def test_a_merge_commit_has_two_parents_and_both_changes(stocked: Repository) -> None:
    dev = change(stocked, 'dev', lambda co: co['labels'].update({1: 'one', 2: 'two'}))
    master = change(stocked, 'master', lambda co: co['images'].__setitem__(5, np.zeros(4, np.uint8)))
    head = stocked.merge('merge dev', dev_branch='dev')
    rec = stocked.store.objects.commit(head)
    assert rec.parents == (master, dev) and rec.message == 'merge dev' and rec.author == USER['user_name']
    with closing(stocked.checkout()) as co:
        assert co['labels'][1] == 'one' and co['labels'][0] == '0'
        assert not co['images'][5].any() and co['images'][6][0] == 6
        assert len(co['labels']) == 20 and len(co['images']) == 20
    stocked.verify_repo_integrity()
    d = stocked.diff(master, head)
    assert d.columns['labels'].mutated == {1, 2} and not d.columns['images']


def test_the_staging_area_follows_a_merge_of_its_branch(stocked: Repository) -> None:
    change(stocked, 'dev', lambda co: co['labels'].__setitem__(1, 'one'))
    change(stocked, 'master', lambda co: co['labels'].__setitem__(2, 'two'))
    head = stocked.merge('merge dev', dev_branch='dev')
    with closing(stocked.checkout(write=True)) as co:  # the staging area is on master
        assert co.commit_hash == head
        co['labels'][3] = 'three'
        after = co.commit('after the merge')
    assert stocked.store.objects.commit(after).parents == (head,)


def test_merge_from_a_writer_checkout(stocked: Repository) -> None:
    change(stocked, 'dev', lambda co: co.metadata.__setitem__('by', 'dev'))
    with closing(stocked.checkout(write=True, branch='master')) as co:
        co['labels'][0] = 'zero'
        first = co.commit('on master')
        with pytest.raises(StagingDirty, match='commit them, or discard them'):
            co['labels'][1] = 'staged'
            co.merge('merge dev', dev_branch='dev')
        co.reset_staging_area(force=True)
        head = co.merge('merge dev', dev_branch='dev')
        assert co.commit_hash == head and co.metadata['by'] == 'dev' and co['labels'][0] == 'zero'
        assert stocked.store.objects.commit(head).parents[0] == first
        co['labels'][2] = 'two'
        assert stocked.store.objects.commit(co.commit('after')).parents == (head,)


def test_merging_a_tag_or_a_commit(stocked: Repository) -> None:
    one = change(stocked, 'dev', lambda co: co['labels'].__setitem__(1, 'one'))
    change(stocked, 'dev', lambda co: co['labels'].__setitem__(2, 'two'))
    stocked.create_tag('v1', commit=one)
    assert stocked.merge('merge v1', dev_branch='v1') == one  # a fast-forward to the tag
    with closing(stocked.checkout(branch='master')) as co:
        assert co['labels'][1] == 'one' and co['labels'][2] == '2'


def test_a_conflict_changes_nothing_and_says_what_and_where(stocked: Repository) -> None:
    change(stocked, 'dev', lambda co: co['labels'].update({1: 'dev', 2: 'dev'}))
    change(stocked, 'master', lambda co: co['labels'].update({1: 'master', 3: 'master'}))
    before = repository_state(stocked)
    with pytest.raises(MergeConflictError) as info:
        stocked.merge('merge dev', dev_branch='dev')
    assert repository_state(stocked) == before
    (c,) = info.value.conflicts
    assert (c.column, c.key, c.kind) == ('labels', 1, 'mutate/mutate')
    assert c.base and c.master and c.dev and len({c.base, c.master, c.dev}) == 3
    with closing(stocked.checkout(branch='master')) as co:
        assert co['labels'].info(1).digest.hex() == c.master
    msg = str(info.value)
    assert "merging 'dev' into 'master' found 1 conflict(s)" in msg and "column 'labels' key 1" in msg
    assert "strategy='ours' or 'theirs'" in msg


@pytest.mark.parametrize(('strategy', 'winner'), [('ours', 'master'), ('theirs', 'dev')])
def test_a_strategy_resolves_every_conflict_one_way(stocked: Repository, strategy: str, winner: str) -> None:
    change(stocked, 'dev', lambda co: (co['labels'].update({1: 'dev', 2: 'dev'}), co['labels'].pop(4)))
    change(stocked, 'master', lambda co: co['labels'].update({1: 'master', 3: 'master', 4: 'master'}))
    head = stocked.merge('merge dev', dev_branch='dev', strategy=strategy)
    with closing(stocked.checkout()) as co:
        labels = co['labels']
        assert labels[1] == winner and labels[2] == 'dev' and labels[3] == 'master'
        assert (4 in labels) == (strategy == 'ours')
    message = stocked.store.objects.commit(head).message
    assert message.startswith('merge dev\n\n')
    assert f"Conflicts resolved with strategy '{strategy}' (kept the {winner} side): 2" in message
    assert "column 'labels' key 1: mutate/mutate" in message and 'key 4: mutate/delete' in message


def test_the_same_change_on_both_sides_is_not_a_conflict(stocked: Repository) -> None:
    both = {1: 'same', 2: 'same'}
    change(stocked, 'dev', lambda co: (co['labels'].update(both), co['labels'].pop(5), co['images'].pop(0)))
    change(stocked, 'master', lambda co: (co['labels'].update(both), co['labels'].pop(5)))
    stocked.merge('merge', dev_branch='dev')
    with closing(stocked.checkout()) as co:
        assert co['labels'][1] == 'same' and 5 not in co['labels'] and 0 not in co['images']
        assert len(co['labels']) == 19 and len(co['images']) == 19


# ---------------------------------------------------------------------------------------- whole columns


def test_a_column_deleted_on_one_side_and_changed_on_the_other(stocked: Repository) -> None:
    change(stocked, 'dev', lambda co: co['labels'].__setitem__(0, 'zero'))
    change(stocked, 'master', lambda co: co.columns.delete('labels'))
    with pytest.raises(MergeConflictError) as info:
        stocked.merge('merge', dev_branch='dev')
    (c,) = info.value.conflicts
    assert (c.column, c.key, c.kind) == ('labels', None, 'delete/mutate') and c.master is None
    assert "column 'labels' the column itself: delete/mutate" in str(info.value)
    stocked.merge('merge', dev_branch='dev', strategy='theirs')
    with closing(stocked.checkout()) as co:
        assert co['labels'][0] == 'zero' and len(co['labels']) == 20


def test_a_column_deleted_on_one_side_only(stocked: Repository) -> None:
    change(stocked, 'dev', lambda co: co.columns.delete('images'))
    change(stocked, 'master', lambda co: co['labels'].__setitem__(0, 'zero'))
    stocked.merge('merge', dev_branch='dev')
    with closing(stocked.checkout()) as co:
        assert list(co.columns) == ['labels'] and co['labels'][0] == 'zero'


def test_columns_added_on_both_sides(stocked: Repository) -> None:
    def add(dtype: str, items: dict[int, int]) -> Any:
        def fn(co: Any) -> None:
            co.add_ndarray_column('new', shape=(1,), dtype=dtype).update(
                {k: np.array([v], dtype=dtype) for k, v in items.items()}
            )

        return fn

    change(stocked, 'dev', add('uint8', {0: 1, 1: 1, 2: 2}))
    change(stocked, 'master', add('uint8', {0: 1, 1: 5, 3: 3}))
    with pytest.raises(MergeConflictError) as info:
        stocked.merge('merge', dev_branch='dev')
    assert conflict_set(info.value) == {('new', 1, 'add/add')}  # 0 is the same, 2 and 3 one-sided
    stocked.merge('merge', dev_branch='dev', strategy='ours')
    with closing(stocked.checkout()) as co:
        assert {k: int(v[0]) for k, v in co['new'].items()} == {0: 1, 1: 5, 2: 2, 3: 3}


def test_columns_added_on_both_sides_with_different_schemas(stocked: Repository) -> None:
    change(stocked, 'dev', lambda co: co.add_str_column('new').__setitem__(0, 'text'))
    change(stocked, 'master', lambda co: co.add_bytes_column('new').__setitem__(0, b'bytes'))
    with pytest.raises(MergeConflictError) as info:
        stocked.merge('merge', dev_branch='dev')
    assert conflict_set(info.value) == {('new', None, 'add/add')}
    stocked.merge('merge', dev_branch='dev', strategy='theirs')
    with closing(stocked.checkout()) as co:
        assert co['new'][0] == 'text'


def test_a_backend_change_merges_with_sample_changes(stocked: Repository) -> None:
    change(stocked, 'dev', lambda co: co['images'].__setitem__(1, np.zeros(4, np.uint8)))
    change(stocked, 'master', lambda co: co['images'].change_backend('hdf5', {'complevel': 3}))
    stocked.merge('merge', dev_branch='dev')
    with closing(stocked.checkout()) as co:
        assert co['images'].backend_name == 'hdf5' and co['images'].backend_options['complevel'] == 3
        assert not co['images'][1].any()


def test_two_different_backend_changes_conflict(stocked: Repository) -> None:
    change(stocked, 'dev', lambda co: co['images'].change_backend('numpy'))
    change(
        stocked,
        'master',
        lambda co: (co['images'].change_backend('hdf5'), co['images'].__setitem__(2, np.ones(4, np.uint8))),
    )
    with pytest.raises(MergeConflictError) as info:
        stocked.merge('merge', dev_branch='dev')
    assert conflict_set(info.value) == {('images', None, 'mutate/mutate')}
    stocked.merge('merge', dev_branch='dev', strategy='ours')
    with closing(stocked.checkout()) as co:
        assert co['images'].backend_name == 'hdf5' and co['images'][2][0] == 1


def test_metadata_merges_key_by_key(stocked: Repository) -> None:
    change(
        stocked, 'dev', lambda co: (co.metadata.update({'a': 'dev', 'b': 'dev'}), co.metadata.pop('source'))
    )
    change(stocked, 'master', lambda co: co.metadata.update({'a': 'master', 'c': 'master'}))
    with pytest.raises(MergeConflictError) as info:
        stocked.merge('merge', dev_branch='dev')
    assert conflict_set(info.value) == {(None, 'a', 'add/add')}
    assert 'metadata key' in str(info.value)
    stocked.merge('merge', dev_branch='dev', strategy='theirs')
    with closing(stocked.checkout()) as co:
        assert dict(co.metadata.items()) == {'a': 'dev', 'b': 'dev', 'c': 'master'}


# ---------------------------------------------------------------------------------------- criss-cross


def criss_cross(repo: Repository, dev_resolution: str) -> tuple[str, str, str, str]:
    """master and dev change key 1 differently (X, Y), then each merges the other's *first* commit.

    master resolves to its own value; dev resolves with ``dev_resolution``. Both merge commits then
    have the two merge bases X and Y.
    """
    x = change(repo, 'master', lambda co: co['labels'].__setitem__(1, 'X'))
    y = change(repo, 'dev', lambda co: co['labels'].__setitem__(1, 'Y'))
    m1 = repo.merge('master takes dev', dev_branch=y, strategy='ours')
    d1 = repo.merge('dev takes master', master_branch='dev', dev_branch=x, strategy=dev_resolution)
    parents_of = repo.store.objects.commit
    assert merge_bases(lambda c: parents_of(c).parents, [m1], [d1]) == sorted([x, y])
    return x, y, m1, d1


def test_criss_cross_sides_that_resolved_alike_merge_cleanly(stocked: Repository) -> None:
    criss_cross(stocked, dev_resolution='theirs')  # both sides chose 'X'
    change(stocked, 'master', lambda co: co['labels'].__setitem__(2, 'later on master'))
    change(stocked, 'dev', lambda co: co['labels'].__setitem__(3, 'later on dev'))
    head = stocked.merge('merge dev', dev_branch='dev')
    with closing(stocked.checkout(commit=head)) as co:
        labels = co['labels']
        assert (labels[1], labels[2], labels[3], labels[4]) == ('X', 'later on master', 'later on dev', '4')


def test_criss_cross_sides_that_resolved_differently_conflict(stocked: Repository) -> None:
    criss_cross(stocked, dev_resolution='ours')  # master chose 'X', dev chose 'Y'
    with pytest.raises(MergeConflictError) as info:
        stocked.merge('merge dev', dev_branch='dev')
    (c,) = info.value.conflicts
    assert (c.column, c.key, c.kind, c.base) == ('labels', 1, 'mutate/mutate', None)
    head = stocked.merge('merge dev', dev_branch='dev', strategy='theirs')
    with closing(stocked.checkout(commit=head)) as co:
        assert co['labels'][1] == 'Y'


# ---------------------------------------------------------------------------------------- bad input


def test_merging_a_branch_into_itself(stocked: Repository) -> None:
    with pytest.raises(MergeError, match="cannot merge branch 'dev' into itself"):
        stocked.merge('m', master_branch='dev', dev_branch='dev')


def test_unknown_refs(stocked: Repository) -> None:
    before = repository_state(stocked)
    with pytest.raises(RefNotFound, match="no branch, tag or commit named 'nope'"):
        stocked.merge('m', dev_branch='nope')
    with pytest.raises(RefNotFound, match="no branch named 'nope'"):
        stocked.merge('m', master_branch='nope', dev_branch='dev')
    with pytest.raises(TypeError, match="missing 1 required argument: 'dev_branch'"):
        stocked.merge('m')  # as Hangar's signature: message, master_branch, dev_branch
    with pytest.raises(ValueError, match='merge needs dev_branch='):
        stocked.merge('m', dev_branch='')
    assert repository_state(stocked) == before


def test_bad_strategy_and_message(stocked: Repository) -> None:
    change(stocked, 'dev', lambda co: co['labels'].__setitem__(1, 'x'))
    with pytest.raises(ValueError, match="expected strategy 'ours', 'theirs' or None, got 'mine'"):
        stocked.merge('m', dev_branch='dev', strategy='mine')
    with pytest.raises(ValueError, match='non-empty message'):
        stocked.merge('  ', dev_branch='dev')


def test_a_dirty_staging_area_refuses_to_merge(stocked: Repository) -> None:
    change(stocked, 'dev', lambda co: co['labels'].__setitem__(1, 'x'))
    with closing(stocked.checkout(write=True, branch='dev')) as co:
        co['labels'][2] = 'staged, not committed'
    before = repository_state(stocked)
    with pytest.raises(StagingDirty, match=r"uncommitted, on branch 'dev'.*hangarfs reset --hard"):
        stocked.merge('m', dev_branch='dev')
    assert repository_state(stocked) == before


def test_merge_needs_the_writer_lock(stocked: Repository) -> None:
    change(stocked, 'dev', lambda co: co['labels'].__setitem__(1, 'x'))
    with closing(stocked.checkout(write=True)), pytest.raises(WriterLockHeld, match='has a writer already'):
        stocked.merge('m', dev_branch='dev')
    assert stocked.merge('m', dev_branch='dev')  # and it is released after each merge


@pytest.mark.parametrize('dev_resolution', ['theirs', 'ours'])
def test_criss_cross_over_a_column_conflict(stocked: Repository, dev_resolution: str) -> None:
    """Between the merge bases the column itself conflicts: resolved alike it merges, else it conflicts."""
    x = change(stocked, 'master', lambda co: co.columns.delete('images'))
    y = change(stocked, 'dev', lambda co: co['images'].__setitem__(0, np.ones(4, np.uint8)))
    stocked.merge('master keeps its delete', dev_branch=y, strategy='ours')
    stocked.merge('dev resolves', master_branch='dev', dev_branch=x, strategy=dev_resolution)
    change(stocked, 'dev', lambda co: co['labels'].__setitem__(7, 'seven'))
    if dev_resolution == 'theirs':  # both deleted the column
        head = stocked.merge('merge dev', dev_branch='dev')
        with closing(stocked.checkout(commit=head)) as co:
            assert list(co.columns) == ['labels'] and co['labels'][7] == 'seven'
    else:
        with pytest.raises(MergeConflictError) as info:
            stocked.merge('merge dev', dev_branch='dev')
        (c,) = info.value.conflicts
        assert (c.column, c.key, c.kind, c.base, c.master) == ('images', None, 'delete/mutate', None, None)
    stocked.verify_repo_integrity()
