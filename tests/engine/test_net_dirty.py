"""One definition of "dirty" (staging-mount issue, item 2): the net difference from the base commit.

Writing a sample's own bytes back leaves overlay entries but changes nothing; ``co.diff.status()``,
``staging_status`` (what ``hangarfs status`` prints), commit's NothingToCommit, checkout's and merge's
StagingDirty must all agree that such a staging area is clean, and a writer moving to another branch
drops those entries instead of refusing.
"""

from __future__ import annotations

from contextlib import closing

import numpy as np
import pytest

from hangarfs import NothingToCommit, Repository
from hangarfs.engine.staging import StagingArea
from hangarfs.engine.staging_status import has_staged_changes, staged_diff, staging_status
from hangarfs.errors import NothingStaged


@pytest.fixture
def based(repo: Repository) -> Repository:
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(2, 2), dtype=np.uint8).update(
            {i: np.full((2, 2), i, np.uint8) for i in range(5)}
        )
        co.add_str_column('captions')[0] = 'zero'
        co.metadata['source'] = 'test'
        co.commit('base')
    repo.create_branch('other')
    return repo


def write_back_identical(repo: Repository) -> None:
    """Stage each kind of change that nets out: same bytes, a write undone, a key deleted and re-added."""
    with closing(repo.checkout(write=True)) as co:
        co['images'][0] = co['images'][0].copy()
        co['images'][9] = np.zeros((2, 2), np.uint8)
        del co['images'][9]
        del co['images'][1]
        co['images'][1] = np.full((2, 2), 1, np.uint8)
        co['captions'][0] = 'zero'
        co.metadata['source'] = 'test'


def test_identical_writes_leave_every_view_of_the_staging_area_clean(based: Repository) -> None:
    write_back_identical(based)
    staging = StagingArea(based.store)
    assert staging.is_dirty()  # the overlay holds entries ...
    assert not has_staged_changes(based.store, staging)  # ... that change nothing
    assert not staged_diff(based.store, staging)
    assert staging_status(based.store).clean
    with closing(based.checkout(write=True)) as co:
        assert co.diff.status() == 'CLEAN'
        with pytest.raises(NothingToCommit):
            co.commit('nothing')
        assert co.diff.status() == 'CLEAN' and np.array_equal(co['images'][1], np.full((2, 2), 1))


def test_a_writer_moves_to_another_branch_over_entries_that_change_nothing(based: Repository) -> None:
    write_back_identical(based)
    with closing(based.checkout(write=True, branch='other')) as co:  # was StagingDirty before
        assert co.branch_name == 'other' and co.diff.status() == 'CLEAN'
        co['images'][4] = np.full((2, 2), 44, np.uint8)
        co.commit('on other')
    write_back_identical(based)  # back on master: the same again, then merge
    head = based.merge('merge other', master_branch='master', dev_branch='other')
    with closing(based.checkout(commit=head)) as co:
        assert np.array_equal(co['images', 4], np.full((2, 2), 44))


def test_entries_that_change_nothing_are_nothing_to_reset(based: Repository) -> None:
    write_back_identical(based)
    with closing(based.checkout(write=True)) as co:
        with pytest.raises(NothingStaged):  # entries that change nothing are nothing to reset
            co.reset_staging_area()
        co.reset_staging_area(force=True)
        assert not StagingArea(based.store).is_dirty()


def test_a_real_change_among_them_is_dirty_everywhere(based: Repository) -> None:
    write_back_identical(based)
    with closing(based.checkout(write=True)) as co:
        co['images'][2] = np.full((2, 2), 99, np.uint8)
        assert co.diff.status() == 'DIRTY'
    status = staging_status(based.store)
    assert not status.clean and status.column_counts() == {'images': {'added': 0, 'deleted': 0, 'mutated': 1}}
    from hangarfs.errors import StagingDirty

    with pytest.raises(StagingDirty):
        based.checkout(write=True, branch='other')
