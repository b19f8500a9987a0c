"""Item 7 of issue 15: code written for Hangar 0.5 catches the builtin exceptions Hangar raises.

Each test does what the Hangar 0.5 documentation does and catches what Hangar's docstrings say it
raises (``Repository.checkout``: ValueError; ``remove_branch``: ValueError, RuntimeError;
``create_branch``: RuntimeError; closed checkouts: PermissionError); the hangarfs class is checked too.
"""

from __future__ import annotations

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.errors import (
    BranchNotMerged,
    ClosedError,
    ColumnExists,
    HangarfsError,
    NoCommitsYet,
    ReadOnlyError,
    RefNotFound,
    RepositoryNotFound,
    StagingDirty,
)


@pytest.fixture
def committed(repo: Repository) -> Repository:
    co = repo.checkout(write=True)
    co.add_ndarray_column('images', prototype=np.zeros((2, 3), np.uint8))
    co['images'][0] = np.ones((2, 3), np.uint8)
    co.commit('first')
    co.close()
    return repo


def test_existing_column_is_a_lookup_error(committed: Repository) -> None:
    co = committed.checkout(write=True)
    try:
        with pytest.raises(LookupError, match="column 'images' already exists") as info:
            co.add_ndarray_column('images', prototype=np.zeros(3))
        assert isinstance(info.value, (ColumnExists, ValueError))
        with pytest.raises(LookupError):
            co.add_str_column('images')
    finally:
        co.close()


def test_unknown_refs_are_value_errors(committed: Repository) -> None:
    with pytest.raises(ValueError, match="no branch named 'nope'") as info:
        committed.checkout(branch='nope')
    assert isinstance(info.value, RefNotFound) and isinstance(info.value, KeyError)
    with pytest.raises(ValueError):
        committed.checkout(commit='0123abcd' * 8)
    with pytest.raises(ValueError):
        committed.checkout(write=True, branch='nope')
    assert not committed.writer_lock_held  # a failed writer checkout leaves the lock free
    with pytest.raises(ValueError):
        committed.remove_branch('nope')
    with pytest.raises(ValueError):
        committed.merge('m', master_branch='master', dev_branch='nope')
    with pytest.raises(ValueError):
        committed.diff('master', 'nope')


def test_writes_through_a_reader_are_type_and_permission_errors(committed: Repository) -> None:
    co = committed.checkout()
    col = co.columns['images']
    with pytest.raises(TypeError):
        col[1] = np.zeros((2, 3), np.uint8)
    with pytest.raises(PermissionError) as info:
        co.columns.delete('images')
    assert isinstance(info.value, ReadOnlyError)
    with pytest.raises(AttributeError):  # as in Hangar: a reader has no add_*_column
        co.add_ndarray_column('x', prototype=np.zeros(2))  # type: ignore[attr-defined]
    assert np.array_equal(col[0], np.ones((2, 3), np.uint8))  # nothing changed
    co.close()


def test_unmerged_branch_removal_is_a_runtime_error(committed: Repository) -> None:
    committed.create_branch('dev')
    co = committed.checkout(write=True, branch='dev')
    co['images'][1] = np.zeros((2, 3), np.uint8)
    co.commit('on dev')
    co.close()
    co = committed.checkout(write=True, branch='master')  # the staging area leaves dev
    co.close()
    with pytest.raises(RuntimeError, match='merge it first') as info:
        committed.remove_branch('dev')
    assert isinstance(info.value, BranchNotMerged) and isinstance(info.value, PermissionError)
    assert 'dev' in committed.list_branches()
    assert committed.remove_branch('dev', force_delete=True).name == 'dev'


def test_branch_or_read_before_any_commit(repo: Repository) -> None:
    with pytest.raises(RuntimeError, match='no commits yet') as info:
        repo.create_branch('dev')
    assert isinstance(info.value, NoCommitsYet)
    with pytest.raises(ValueError, match='no commits yet'):  # Hangar: ValueError from checkout()
        repo.checkout()


def test_uninitialized_repository_is_a_runtime_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = Repository(tmp_path / 'empty', exists=False)
    for call in (repo.checkout, repo.list_branches, repo.log, lambda: repo.create_branch('x')):
        with pytest.raises(RuntimeError) as info:
            call()
        assert isinstance(info.value, RepositoryNotFound)


@pytest.mark.parametrize('write', [False, True])
def test_a_closed_checkout_and_its_columns_raise_permission_error(committed: Repository, write: bool) -> None:
    co = committed.checkout(write=write)
    col = co.columns['images']
    co.close()
    uses = [
        lambda: co.columns,
        lambda: co['images'],
        lambda: co['images', 0],
        lambda: co.commit_hash,
        lambda: co.metadata,
        lambda: col[0],
        lambda: col.iswriteable,
        lambda: col.column,
        lambda: col.shape,
        lambda: len(col),
        lambda: list(col.keys()),
    ]
    for use in uses:
        with pytest.raises(PermissionError) as info:
            use()
        assert isinstance(info.value, ClosedError) and isinstance(info.value, HangarfsError)


def test_a_writer_on_another_branch_with_staged_changes_is_a_value_error(committed: Repository) -> None:
    committed.create_branch('dev')
    co = committed.checkout(write=True)
    co['images'][5] = np.zeros((2, 3), np.uint8)
    co.close()
    with pytest.raises(ValueError, match='uncommitted changes') as info:
        committed.checkout(write=True, branch='dev')
    assert isinstance(info.value, StagingDirty)
    assert not committed.writer_lock_held


def test_merge_with_pending_changes_is_a_runtime_error(committed: Repository) -> None:
    committed.create_branch('dev')
    co = committed.checkout(write=True)
    co['images'][5] = np.zeros((2, 3), np.uint8)
    try:
        with pytest.raises(RuntimeError, match='Changes are currently pending'):
            co.merge('m', dev_branch='dev')
    finally:
        co.close()


def test_merge_takes_message_master_and_dev(committed: Repository) -> None:
    committed.create_branch('dev')
    with pytest.raises(TypeError, match="missing 1 required argument: 'dev_branch'"):
        committed.merge('master', 'dev')  # the message forgotten: Hangar's signature is a TypeError
    assert committed.merge('merge dev', 'master', 'dev')  # positional, as in Hangar's tutorial
