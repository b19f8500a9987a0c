"""The staging view's write path in-process (fs/view.py StagingView), without FUSE."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.engine.writer_checkout import WriterCheckout
from hangarfs.errors import InvalidKey, SchemaMismatch
from hangarfs.fs.npy import NpyFormatError
from hangarfs.fs.view import StagingView
from tests.helpers import npy_bytes

from .conftest import make_repo


@pytest.fixture
def staged(tmp_path: Path) -> Iterator[tuple[Repository, StagingView]]:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(2, 2), dtype=np.uint8).update(
            {i: np.full((2, 2), i, np.uint8) for i in range(3)}
        )
        co.commit('base')
    co = repo.checkout(write=True)
    assert isinstance(co, WriterCheckout)
    try:
        yield repo, StagingView(co, branch='master')
    finally:
        co.close()


def put(view: StagingView, path: str, data: bytes) -> None:
    handle = view.create(path)
    view.write(handle, data, 0)
    try:
        view.flush(handle)
    finally:
        view.release(handle)


def read(view: StagingView, path: str) -> bytes:
    node = view.lookup(path)
    assert node is not None, path
    return view.read(node, node.size, 0)


def test_written_file_is_staged_at_flush_and_read_back(staged: tuple[Repository, StagingView]) -> None:
    _, view = staged
    data = npy_bytes(np.full((2, 2), 9, np.uint8))
    handle = view.create('/images/9.npy')
    view.write(handle, data[:50], 0)
    view.write(handle, data[50:], 50)
    assert view.lookup('/images/9.npy').size == len(data)  # type: ignore[union-attr]
    assert view.co['images'].get(9) is None  # not staged before close
    view.flush(handle)
    view.release(handle)
    assert read(view, '/images/9.npy') == data
    assert np.array_equal(view.co['images'][9], np.full((2, 2), 9))


def test_listing_without_attributes_merges_staged_changes(staged: tuple[Repository, StagingView]) -> None:
    """The lean listing path (huge columns) shows staged adds and deletes, in key order."""
    _, view = staged
    put(view, '/images/@7.npy', npy_bytes(np.zeros((2, 2), np.uint8)))
    put(view, '/images/10.npy', npy_bytes(np.zeros((2, 2), np.uint8)))
    view.unlink('/images/1.npy')
    lean = [name for name, _ in view.list('/images', with_nodes=False) or []]
    full = [name for name, _ in view.list('/images', with_nodes=True) or []]
    assert lean == full == ['.schema.json', '0.npy', '2.npy', '10.npy', '@7.npy']


@pytest.mark.parametrize(
    ('data', 'error'),
    [
        (b'garbage', NpyFormatError),
        (npy_bytes(np.zeros((2, 2), np.float32)), SchemaMismatch),
        (npy_bytes(np.zeros((3, 2), np.uint8)), SchemaMismatch),
        (npy_bytes(np.zeros((2, 2), np.uint8))[:-1], NpyFormatError),
    ],
)
def test_bad_content_raises_at_flush_and_stages_nothing(
    data: bytes, error: type[Exception], staged: tuple[Repository, StagingView]
) -> None:
    _, view = staged
    before = read(view, '/images/1.npy')
    with pytest.raises(error):
        put(view, '/images/1.npy', data)
    assert read(view, '/images/1.npy') == before
    assert view.lookup('/images/1.npy').size == len(before)  # type: ignore[union-attr]


@pytest.mark.parametrize('path', ['/top.npy', '/images/a b.npy', '/images/1.txt', '/images/sub/1.npy'])
def test_bad_names_are_refused_at_create(path: str, staged: tuple[Repository, StagingView]) -> None:
    _, view = staged
    with pytest.raises(InvalidKey):
        view.create(path)


def test_scratch_files_then_rename_like_rsync(staged: tuple[Repository, StagingView]) -> None:
    _, view = staged
    data = npy_bytes(np.full((2, 2), 7, np.uint8))
    put(view, '/images/.7.npy.Xy12Z', data)
    assert '.7.npy.Xy12Z' in [n for n, _ in view.list('/images')]  # type: ignore[union-attr]
    assert view.co['images'].get(7) is None
    view.rename('/images/.7.npy.Xy12Z', '/images/7.npy')
    assert view.lookup('/images/.7.npy.Xy12Z') is None
    assert read(view, '/images/7.npy') == data


def test_rename_within_a_column_moves_the_sample(staged: tuple[Repository, StagingView]) -> None:
    _, view = staged
    before = read(view, '/images/2.npy')
    view.rename('/images/2.npy', '/images/two.npy')
    assert view.lookup('/images/2.npy') is None and read(view, '/images/two.npy') == before


def test_mkdir_then_first_sample_or_schema_makes_the_column(staged: tuple[Repository, StagingView]) -> None:
    _, view = staged
    view.mkdir('/labels')
    assert view.lookup('/labels') is not None and 'labels' in [n for n, _ in view.list('/')]  # type: ignore[union-attr]
    put(view, '/labels/0.npy', npy_bytes(np.array([3], np.int64)))
    assert view.co['labels'].dtype == np.int64 and view.co['labels'].shape == (1,)
    view.mkdir('/vols')
    put(
        view,
        '/vols/.schema.json',
        json.dumps({'dtype': 'float32', 'shape': [4], 'variable_shape': True}).encode(),
    )
    assert view.co['vols'].variable_shape and view.co['vols'].shape == (4,)
    with pytest.raises(NpyFormatError):
        put(view, '/images/.schema.json', b'{}')  # not a schema: the column keeps its own
    view.mkdir('/empty')
    view.rmdir('/empty')
    assert view.lookup('/empty') is None
    with pytest.raises(OSError):
        view.rmdir('/images')  # not empty


def test_metadata_files_and_commit(staged: tuple[Repository, StagingView]) -> None:
    repo, view = staged
    put(view, '/.hangarfs/metadata/note', b'hand labelled\n')
    assert read(view, '/.hangarfs/metadata/note') == b'hand labelled\n'
    view.unlink('/images/0.npy')
    digest = view.commit('from the view')
    assert json.loads(read(view, '/.hangarfs/commit.json'))['commit'] == digest
    with closing(repo.checkout(commit=digest)) as co:
        assert co.metadata['note'] == 'hand labelled\n' and 0 not in co['images']
