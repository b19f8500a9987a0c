"""head.stock in a real git repository decides what a stock reads and where it may write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hangarfs import Repository
from hangarfs.errors import StagingDirty, StockBehindBranch, StockNotFound
from hangarfs.stockroom import StockRoom
from hangarfs.stockroom.pointer import parse_pointer

from .conftest import git, stock_cli


def make_net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))


def code_commit(root: Path, message: str) -> str:
    git(root, 'add', '-A')
    git(root, 'commit', '-q', '-m', message)
    return git(root, 'rev-parse', 'HEAD').strip()


def test_git_checkout_of_old_code_reads_old_data_refuses_writes_and_branches(project: Path) -> None:
    stock = StockRoom()
    assert stock.path == project  # found from project/src upwards
    stock.data['labels'][0] = np.array([1], dtype=np.int64)
    stock.model['net'] = make_net(1).state_dict()
    stock.tag['lr'] = 0.1
    v1 = stock.commit('v1 data and model')
    (project / 'train.py').write_text('lr = 0.1\n')
    code_v1 = code_commit(project, 'code v1')

    stock.data['labels'][0] = np.array([2], dtype=np.int64)
    stock.data['labels'][1] = np.array([3], dtype=np.int64)
    stock.model['net'] = make_net(2).state_dict()
    stock.tag['lr'] = 0.01
    v2 = stock.commit('v2 data and model')
    (project / 'train.py').write_text('lr = 0.01\n')
    code_commit(project, 'code v2')
    assert git(project, 'status', '--porcelain') == ''  # the store is ignored, head.stock committed

    # back to the old code: the same StockRoom object now reads the old data, model and tags
    git(project, 'checkout', '-q', code_v1)
    assert parse_pointer((project / 'head.stock').read_text()).commit == v1
    assert stock.head == v1
    assert stock.data['labels'][0].tolist() == [1] and 1 not in stock.data['labels']
    old = stock.model['net']
    for key, value in make_net(1).state_dict().items():
        assert torch.equal(old[key], value), key
    assert stock.tag['lr'] == 0.1

    # writing on top of the old commit is refused, with how to go on, and nothing is staged
    with pytest.raises(StockBehindBranch, match=r"checkout_branch\('retrain'\)") as info:
        stock.data['labels'][0] = np.array([9], dtype=np.int64)
    assert info.value.pointer_commit == v1 and info.value.branch_head == v2
    for write in (
        lambda: stock.model.__setitem__('net', make_net(3).state_dict()),
        lambda: stock.tag.__setitem__('lr', 0.5),
        lambda: stock.commit('on top of the old data'),
    ):
        with pytest.raises(StockBehindBranch):
            write()
    repo = Repository(project)
    assert repo.store.refs.branch_head('master') == v2

    # a branch at the old commit, then write and commit there
    git(project, 'checkout', '-q', '-b', 'retrain')
    assert stock.checkout_branch('retrain') == v1
    stock.data['labels'][0] = np.array([7], dtype=np.int64)
    stock.model['net'] = make_net(4).state_dict()
    stock.tag['lr'] = 0.05
    v3 = stock.commit('retrained from v1')
    assert parse_pointer((project / 'head.stock').read_text()) == parse_pointer(
        f'commit {v3}\nbranch retrain\n'
    )
    code_commit(project, 'retrain from v1')
    assert repo.store.refs.branch_head('retrain') == v3 and repo.store.refs.branch_head('master') == v2
    assert repo.log(commit=v3, return_contents=True)['ancestors'][v3] == [v1]  # type: ignore[index]

    # back on the main code line: master's data again, and writes are allowed there
    git(project, 'checkout', '-q', 'main')
    assert stock.head == v2 and stock.branch == 'master'
    assert stock.data['labels'][0].tolist() == [2] and stock.tag['lr'] == 0.01
    stock.data['labels'][2] = np.array([4], dtype=np.int64)
    v4 = stock.commit('more labels on master')
    assert repo.store.refs.branch_head('master') == v4

    # the shell's view of the same pointer
    listing = stock_cli(project, 'list', '--data').stdout
    assert listing.startswith('labels\t3 samples\tint64 (1,)')


def test_checkout_branch_refuses_while_changes_are_staged(project: Path) -> None:
    stock = StockRoom()
    stock.data['x'][0] = np.zeros(2)
    stock.commit('first')
    stock.data['x'][1] = np.ones(2)
    with pytest.raises(StagingDirty, match='commit them'):
        stock.checkout_branch('other')
    stock.commit('second')
    assert stock.checkout_branch('other') == stock.head
    assert stock.branch == 'other'


def test_a_fresh_clone_without_the_store_says_what_is_missing(project: Path, tmp_path: Path) -> None:
    stock = StockRoom()
    stock.data['x'][0] = np.zeros(2)
    stock.commit('first')
    code_commit(project, 'code')
    clone = tmp_path / 'clone'
    git(tmp_path, 'clone', '-q', str(project), str(clone))
    assert (clone / 'head.stock').exists() and not (clone / '.hangarfs').exists()
    with pytest.raises(StockNotFound, match='no hangarfs repository'):
        StockRoom(clone)


def test_a_merge_conflict_in_head_stock_is_explained(project: Path) -> None:
    stock = StockRoom()
    stock.data['x'][0] = np.zeros(2)
    stock.commit('first')
    (project / 'head.stock').write_text('<<<<<<< HEAD\ncommit ' + 'a' * 64 + '\n=======\n>>>>>>> other\n')
    with pytest.raises(StockNotFound, match='merge conflict markers'):
        stock.data['x'][0]


def test_a_plain_hangarfs_repository_without_head_stock_follows_its_branch(tmp_path: Path) -> None:
    repo = Repository(tmp_path / 'plain', exists=False)
    repo.init(user_name='Ada', user_email='ada@example.org')
    stock = StockRoom(tmp_path / 'plain')  # a path is trusted as given
    stock.model['net'] = make_net(0).state_dict()
    digest = stock.commit('a model in a hangarfs repository')
    assert not (tmp_path / 'plain' / 'head.stock').exists()
    assert repo.store.refs.branch_head('master') == digest == stock.head


def test_a_pointer_to_a_commit_this_repository_lacks_says_so(project: Path) -> None:
    stock = StockRoom()
    stock.data['x'][0] = np.zeros(2)
    stock.commit('first')
    (project / 'head.stock').write_text(f'commit {"ab" * 32}\nbranch master\n')
    with pytest.raises(KeyError, match='which this repository does not have'):
        stock.data['x'][0]
    head = stock.repository.store.refs.branch_head('master')
    (project / 'head.stock').write_text(f'commit {head}\nbranch gone\n')
    with pytest.raises(KeyError, match="names branch 'gone'"):
        stock.data['x'][1] = np.zeros(2)
    (project / 'head.stock').write_text('commit 12345\n')
    with pytest.raises(StockNotFound, match='expected "commit <64 hex digits>"'):
        _ = stock.head
