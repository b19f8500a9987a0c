"""Item 5 of issue 15: ``with co:`` (and ``with co.columns:``) is Hangar 0.5's batch context over
every column, and leaves the checkout open, as in Hangar's tutorial::

    co = repo.checkout(write=True)
    with co:
        co['images'][0] = img
        co['labels'][0] = lab
    co.commit('added data')
    co.close()
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from tests.helpers import Children


@pytest.fixture
def with_columns(repo: Repository) -> Repository:
    co = repo.checkout(write=True)
    co.add_ndarray_column('images', prototype=np.zeros(4, np.uint8))
    co.add_str_column('labels')
    co.commit('columns')
    co.close()
    return repo


def test_with_co_batches_and_leaves_the_writer_open(with_columns: Repository) -> None:
    co = with_columns.checkout(write=True)
    with co as entered:
        assert entered is co
        for i in range(50):
            co['images'][i] = np.full(4, i, np.uint8)
            co['labels'][i] = str(i)
    assert co.diff.status() == 'DIRTY'  # still open, and the writes are staged
    digest = co.commit('added data')
    assert with_columns.writer_lock_held
    co.close()
    assert not with_columns.writer_lock_held
    reader = with_columns.checkout(commit=digest)
    assert reader['labels', 49] == '49' and reader['images', 7][0] == 7
    reader.close()


def test_with_co_columns_is_the_same_batch(with_columns: Repository) -> None:
    co = with_columns.checkout(write=True)
    with co.columns as cols:
        cols['images'][0] = np.ones(4, np.uint8)
        cols['labels'][0] = 'one'
    co.commit('via co.columns')
    assert co['labels', 0] == 'one'
    co.close()


def test_nested_blocks_do_not_close_anything(with_columns: Repository) -> None:
    co = with_columns.checkout(write=True)
    images = co.columns['images']
    with co:
        with images as img:
            img[0] = np.zeros(4, np.uint8)
        images[1] = np.ones(4, np.uint8)  # still inside `with co:`
        with co:
            co['labels'][0] = 'inner'
    assert len(images) == 2 and images.iswriteable
    co.commit('nested blocks')
    co.close()


def test_with_a_reader_leaves_it_open(with_columns: Repository) -> None:
    co = with_columns.checkout(write=True)
    co['labels'][0] = 'zero'
    co.commit('one sample')
    co.close()
    reader = with_columns.checkout()
    with reader:
        assert reader['labels', 0] == 'zero'
    assert reader['labels', 0] == 'zero'
    reader.close()


def test_a_column_cannot_be_removed_inside_a_block(with_columns: Repository) -> None:
    co = with_columns.checkout(write=True)
    with co, pytest.raises(PermissionError, match='inside a `with` block'):
        co.columns.delete('labels')
    with co['images'], pytest.raises(PermissionError):
        del co.columns['labels']
    assert 'labels' in co.columns
    co.columns.delete('labels')  # after the block it can go
    assert 'labels' not in co.columns
    co.close()


def test_closing_is_how_to_close_at_the_end_of_a_block(with_columns: Repository) -> None:
    with closing(with_columns.checkout(write=True)) as co:
        co['labels'][0] = 'x'
        co.commit('c')
    assert not with_columns.writer_lock_held
    with pytest.raises(PermissionError):
        co.commit('after close')


def test_writes_of_a_block_are_durable_when_it_exits(with_columns: Repository, children: Children) -> None:
    """A process that dies right after `with co:` exits (never closing the checkout) keeps the writes;
    one that dies inside the block keeps none of the block's writes, and the lock is free either way."""
    children.run(
        """
        import os, sys
        from hangarfs import Repository
        co = Repository(sys.argv[1]).checkout(write=True)
        with co:
            co['labels']['kept'] = 'after the block'
        with co:
            co['labels']['lost'] = 'inside the block'
            os._exit(0)
        """,
        str(Path(with_columns.path)),
    )
    co = with_columns.checkout(write=True)
    assert co['labels', 'kept'] == 'after the block'
    assert 'lost' not in co['labels']
    co.close()


def test_no_column_is_added_inside_a_block(with_columns: Repository) -> None:
    co = with_columns.checkout(write=True)
    for block in (co, co.columns, co['images']):
        with block, pytest.raises(PermissionError, match='inside a `with` block'):
            co.add_str_column('new')
    assert 'new' not in co.columns
    co.add_str_column('new')  # after the block
    co.close()
