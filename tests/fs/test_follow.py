"""Following branches by invalidation (fs/follow.py), in-process with a hand-driven clock."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.errors import RefNotFound
from hangarfs.fs.follow import FollowedBranch, FollowedRefs, pinned, poll_moves
from hangarfs.fs.view import CommitView, InfoView

from .conftest import make_repo


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('x', shape=(2,), dtype=np.int64).update(
            {i: np.array([i, i]) for i in range(10)}
        )
        co.add_str_column('s', contains_subsamples=True)['doc'] = {'a': 'alpha', 'b': 'beta'}
        co.metadata['k'] = 'v'
        co.commit('one')
    return repo


def commit(repo: Repository, change: object) -> str:
    with closing(repo.checkout(write=True)) as co:
        change(co)  # type: ignore[operator]
        return co.commit('change')


def test_a_followed_branch_moves_only_when_polled_after_its_interval(repo: Repository) -> None:
    clock = Clock()
    view = FollowedBranch(repo.store, 'master', interval=0.25, clock=clock)
    first = view.commit
    assert view.poll() is None  # nothing moved
    second = commit(repo, lambda co: co['x'].__setitem__(3, np.array([-3, -3])))
    clock.now += 0.1
    assert view.poll() is None  # read at most every interval
    clock.now += 0.2
    move = view.poll()
    assert move is not None
    assert view.commit == first  # nothing switches before apply: the adapter picks the moment
    assert view.read(view.lookup('/x/3.npy'), 200, 0)[-16:] == np.array([3, 3]).tobytes()  # type: ignore[arg-type]
    move.apply()
    assert view.commit == second
    assert view.read(view.lookup('/x/3.npy'), 200, 0)[-16:] == np.array([-3, -3]).tobytes()  # type: ignore[arg-type]
    clock.now += 1
    assert view.poll() is None  # the new head is the current one


def test_a_move_names_exactly_what_the_commit_changed(repo: Repository) -> None:
    clock = Clock()
    view = FollowedBranch(repo.store, 'master', interval=0.25, clock=clock)

    def change(co: object) -> None:
        co['x'][3] = np.array([0, 0])  # type: ignore[index]
        del co['x'][4]  # type: ignore[index]
        co['x'][77] = np.array([7, 7])  # type: ignore[index]
        co['s']['doc'] = {'a': 'ALPHA', 'b': 'beta'}  # type: ignore[index]
        co.metadata['k'] = 'w'  # type: ignore[attr-defined]

    commit(repo, change)
    clock.now += 1
    move = view.poll()
    assert move is not None
    assert set(move.entries) == {
        '/x/3.npy',
        '/x/4.npy',
        '/x/77.npy',
        '/x/.schema.json',
        '/s/doc',
        '/s/doc/a.txt',
        '/s/.schema.json',
        '/.hangarfs/metadata/k',
        '/.hangarfs/commit.json',
        '/.hangarfs/mount.json',
    }
    assert set(move.dirs) == {'/', '/.hangarfs', '/.hangarfs/metadata', '/x', '/s', '/s/doc'}
    assert '/x/5.npy' not in move.entries  # unchanged samples keep their cached names and pages


def test_a_new_column_invalidates_its_name_and_the_root(repo: Repository) -> None:
    clock = Clock()
    view = FollowedBranch(repo.store, 'master', clock=clock)
    commit(repo, lambda co: co.add_bytes_column('b').__setitem__(0, b'\x00'))
    clock.now += 1
    move = view.poll()
    assert move is not None and '/b' in move.entries and '/b/0.bin' in move.entries and '/' in move.dirs


def test_all_refs_report_new_refs_and_moves_of_entered_branches(repo: Repository) -> None:
    clock = Clock()
    refs = FollowedRefs(repo.store, interval=0.25, clock=clock)
    source = InfoView(refs, {'pid': 0})
    assert refs.lookup('/branches/master/x/1.npy') is not None  # entering builds the branch's view
    repo.create_branch('dev')
    commit(repo, lambda co: co['x'].__setitem__(1, np.array([9, 9])))
    clock.now += 1
    moves = poll_moves(source)
    entries = {e for m in moves for e in m.entries}
    assert '/branches/dev' in entries  # a new branch: its negative name goes
    assert '/branches/master/x/1.npy' in entries and '/branches/master/x/2.npy' not in entries
    assert any(c.startswith('/commits/') for c in entries)  # the new commit appears under commits/
    for m in moves:
        m.apply()
    node = refs.lookup('/branches/master/x/1.npy')
    assert node is not None and refs.read(node, 200, 0)[-16:] == np.array([9, 9]).tobytes()


def test_pinned_gives_the_immutable_state_behind_a_path(repo: Repository) -> None:
    refs = FollowedRefs(repo.store)
    view, rest = pinned(InfoView(refs, {}), '/branches/master/x')
    assert isinstance(view, CommitView) and rest == '/x' and view.uniform_file_size('/x') is not None
    branch = FollowedBranch(repo.store, 'master')
    view, rest = pinned(InfoView(branch, {}), '/x')
    assert isinstance(view, CommitView) and rest == '/x'
    commit_view = CommitView(repo.store, branch.commit)
    assert pinned(commit_view, '/x') == (commit_view, '/x')


def test_uniform_file_size_is_every_sample_file_size_or_none(repo: Repository) -> None:
    view = CommitView(repo.store, repo.store.refs.branch_head('master') or '')
    size = view.uniform_file_size('/x')
    entries = view.list_nodes('/x')
    assert entries is not None
    sizes = {node.size for name, node in entries if not name.startswith('.')}
    assert sizes == {size}
    assert view.uniform_file_size('/s') is None  # nested str: sizes vary
    assert view.uniform_file_size('/') is None and view.uniform_file_size('/x/1.npy') is None


def test_following_a_missing_branch_fails(repo: Repository) -> None:
    with pytest.raises(RefNotFound):
        FollowedBranch(repo.store, 'nope')
