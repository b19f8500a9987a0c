"""Item 4 of issue 15: ``Repository.checkout`` validates its arguments as Hangar 0.5 documents.

Hangar's docstring: "ValueError: If the value of `write` argument is not boolean"; "ValueError: If
``commit`` argument is set to any value when ``write=True``". A branch passed positionally (where
``write`` goes) must never open a writer and take the lock.
"""

from __future__ import annotations

import numpy as np
import pytest

from hangarfs import Repository


@pytest.fixture
def two_branches(repo: Repository) -> Repository:
    co = repo.checkout(write=True)
    co.add_str_column('s')['k'] = 'on master'
    co.commit('first')
    co.close()
    repo.create_branch('dev')
    return repo


@pytest.mark.parametrize('write', ['dev', 'True', 1, 0, None, [True]])
def test_write_takes_only_booleans(two_branches: Repository, write: object) -> None:
    with pytest.raises(ValueError, match=r'write=\.\.\.\) takes True or False'):
        two_branches.checkout(write)  # type: ignore[arg-type]
    assert not two_branches.writer_lock_held
    co = two_branches.checkout(write=True)  # the lock is free
    co.close()


def test_a_branch_passed_positionally_names_the_fix(two_branches: Repository) -> None:
    with pytest.raises(ValueError, match="pass branch='dev'"):
        two_branches.checkout('dev')  # type: ignore[arg-type]


@pytest.mark.parametrize('kwargs', [{'branch': True}, {'branch': 1}, {'commit': 5}, {'commit': None}])
def test_branch_and_commit_take_only_str(two_branches: Repository, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r'takes the (branch|commit) name as a str'):
        two_branches.checkout(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        two_branches.checkout(write=True, **kwargs)  # type: ignore[arg-type]
    assert not two_branches.writer_lock_held


def test_numpy_bools_are_bools(two_branches: Repository) -> None:
    co = two_branches.checkout(write=np.bool_(False))
    assert not co.iswriteable
    co.close()


def test_a_writer_takes_no_commit(two_branches: Repository) -> None:
    head = two_branches.log(return_contents=True)['head']  # type: ignore[index]
    with pytest.raises(ValueError, match='not on commit='):
        two_branches.checkout(write=True, commit=head)
    assert not two_branches.writer_lock_held


def test_without_branch_both_kinds_use_the_staging_areas_branch(two_branches: Repository) -> None:
    co = two_branches.checkout(write=True, branch='dev')
    co['s']['k'] = 'on dev'
    co.commit('dev change')
    co.close()
    reader = two_branches.checkout()  # Hangar: "the staging environment's base branch HEAD"
    assert reader.branch_name == 'dev' and reader['s', 'k'] == 'on dev'
    reader.close()
    writer = two_branches.checkout(write=True)
    assert writer.branch_name == 'dev'
    writer.close()
    master = two_branches.checkout(branch='master')
    assert master['s', 'k'] == 'on master'
    master.close()
