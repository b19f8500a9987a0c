"""The staging view's rules in-process, without FUSE (staging-mount issue, items 4-9): which names are
scratch space, per-file mtimes and modes, schema files over existing columns, rm -r, renames."""

from __future__ import annotations

import errno
import io
import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.engine.attr_table import AttrTable
from hangarfs.engine.writer_checkout import WriterCheckout
from hangarfs.errors import InvalidKey, SchemaMismatch
from hangarfs.fs.staging_paths import SCRATCH, is_scratch_name
from hangarfs.fs.view import AllRefsView, StagingView

from .conftest import make_repo


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def put(view: StagingView, path: str, data: bytes) -> None:
    handle = view.create(path)
    view.write(handle, data, 0)
    try:
        view.flush(handle)
    finally:
        view.release(handle)


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(2, 2), dtype=np.uint8).update(
            {i: np.full((2, 2), i, np.uint8) for i in range(3)}
        )
        co.add_ndarray_column('scans', shape=(2,), dtype=np.int16, contains_subsamples=True)['p'] = {
            'a': np.zeros(2, np.int16)
        }
        co.commit('base')
    return repo


@pytest.fixture
def view(repo: Repository) -> Iterator[StagingView]:
    co = repo.checkout(write=True)
    assert isinstance(co, WriterCheckout)
    try:
        yield StagingView(co, branch='master', attrs=AttrTable(repo.store))
    finally:
        co.close()


@pytest.mark.parametrize(
    ('name', 'scratch'),
    [
        ('sedAb12Cd', True),
        ('tmpx8_q2kz', True),
        ('4913', True),
        ('.7.npy.swp', True),
        ('7.npy~', True),
        ('#7.npy#', True),
        ('7.npy.lock', True),
        ('7.npy.tmp', True),
        ('7.npy', False),
        ('a.npz', False),
        ('notes.md', False),
    ],
)
def test_scratch_names_are_the_names_temporary_files_get(name: str, scratch: bool) -> None:
    assert is_scratch_name(name) is scratch


def test_scratch_files_stage_nothing_until_renamed(view: StagingView) -> None:
    put(view, '/images/sedAb12Cd', npy(np.full((2, 2), 9, np.uint8)))
    assert view._target('/images/sedAb12Cd').kind == SCRATCH and 9 not in view.co['images']
    view.rename('/images/sedAb12Cd', '/images/9.npy')
    assert np.array_equal(view.co['images'][9], np.full((2, 2), 9))
    with pytest.raises(InvalidKey, match=r'\.npz files are not samples'):
        view.create('/images/a.npz')
    put(view, '/images/sedX', b'garbage')
    with pytest.raises(Exception, match='magic'):
        view.rename('/images/sedX', '/images/4.npy')  # validated at the rename: refused ...
    assert view.lookup('/images/sedX') is not None  # ... and the scratch file stays


def test_mtimes_are_per_file_and_kept_with_the_staging_area(repo: Repository, view: StagingView) -> None:
    def mtime(path: str) -> int:
        node = view.lookup(path)
        assert node is not None
        return node.mtime_ns

    base = mtime('/images/0.npy')
    assert mtime('/images/1.npy') == base
    put(view, '/images/1.npy', npy(np.full((2, 2), 7, np.uint8)))
    assert mtime('/images/1.npy') > base and mtime('/images/0.npy') == base
    view.set_times('/images/2.npy', 1_000_000_000_000_000_000)
    view.set_mode('/images/2.npy', 0o600)
    node = view.lookup('/images/2.npy')
    assert node is not None and node.mtime_ns == 10**18 and node.mode == 0o600
    listed = dict(view.list_nodes('/images') or ())
    assert listed['2.npy'].mtime_ns == 10**18 and listed['0.npy'].mtime_ns == base
    changed = mtime('/images/1.npy')
    digest = view.commit('one')
    assert mtime('/images/1.npy') == changed and mtime('/images/0.npy') == base  # the commit changed neither
    view.co.close()
    co = repo.checkout(write=True)
    try:
        again = StagingView(co, branch='master', attrs=AttrTable(repo.store))
        node = again.lookup('/images/2.npy')
        assert node is not None and node.mtime_ns == 10**18 and node.mode == 0o600
        assert again.lookup('/images/0.npy').mtime_ns == base  # type: ignore[union-attr]
        co['images'][0] = np.full((2, 2), 50, np.uint8)  # staged without the view ...
        co.commit('elsewhere')
        third = StagingView(co, branch='master', attrs=AttrTable(repo.store))
        assert third.lookup('/images/0.npy').mtime_ns != base  # type: ignore[union-attr]
        assert third.lookup('/images/2.npy').mtime_ns == 10**18  # type: ignore[union-attr]
    finally:
        co.close()
    assert len(digest) == 64


def test_a_schema_file_must_agree_with_its_column(view: StagingView) -> None:
    own = view.read(view.lookup('/images/.schema.json'), 10_000, 0)  # type: ignore[arg-type]
    put(view, '/images/.schema.json', own)  # identical: accepted
    spec = json.loads(own) | {'backend': 'numpy', 'backend_code': None, 'backend_options': None}
    put(view, '/images/.schema.json', json.dumps(spec).encode())  # another backend: applied
    assert view.co['images'].backend_name == 'numpy'
    with pytest.raises(SchemaMismatch, match='ndarray uint8 \\(2, 2\\), flat'):
        put(view, '/images/.schema.json', json.dumps(spec | {'dtype': 'float32'}).encode())
    view.mkdir('/vols')
    put(view, '/vols/a.npy', npy(np.ones((2, 3), np.float32)))  # a column from its first sample
    wider = {'kind': 'ndarray', 'dtype': 'float32', 'shape': [4, 4], 'variable_shape': True}
    put(view, '/vols/.schema.json', json.dumps(wider).encode())  # new here, and the sample fits: refit
    assert view.co['vols'].variable_shape and np.array_equal(view.co['vols']['a'], np.ones((2, 3)))
    with pytest.raises(SchemaMismatch):
        put(view, '/vols/.schema.json', json.dumps(wider | {'shape': [1, 1]}).encode())  # a misfit


def test_rm_r_of_columns_and_nested_samples(view: StagingView) -> None:
    view.unlink('/scans/p/a.npy')
    assert view.lookup('/scans/p') is not None  # the sample's directory stays, empty, for rmdir
    view.rmdir('/scans/p')
    view.unlink('/images/.schema.json')  # rm -r removes it first ...
    assert '.schema.json' not in dict(view.list_names('/images') or ())
    assert view.co['images'].schema is not None  # ... the column keeps its schema meanwhile
    for i in range(3):
        view.unlink(f'/images/{i}.npy')
    view.rmdir('/images')
    assert 'images' not in view.co.columns
    with pytest.raises(OSError) as info:
        view.rmdir('/scans/p')
    assert info.value.errno == errno.ENOENT


def test_renames_of_samples_columns_and_across_columns(view: StagingView) -> None:
    view.rename('/scans/p', '/scans/q')  # a nested sample, by reference
    assert view.lookup('/scans/q/a.npy') is not None and view.lookup('/scans/p') is None
    view.set_times('/images/2.npy', 10**18)
    view.rename('/images', '/pictures')  # a whole column, by reference; its files keep their times
    assert len(view.co['pictures']) == 3 and 'images' not in view.co.columns
    assert view.lookup('/pictures/2.npy').mtime_ns == 10**18  # type: ignore[union-attr]
    view.mkdir('/labels')
    put(view, '/labels/0.npy', npy(np.array([1], np.int64)))
    with pytest.raises(OSError) as info:
        view.rename('/pictures/0.npy', '/labels/5.npy')  # labels cannot hold a (2, 2) uint8 image
    assert info.value.errno == errno.EXDEV
    with pytest.raises(OSError) as info:
        view.rename('/pictures/0.npy', '/labels/5.txt')
    assert info.value.errno == errno.EXDEV
    view.rename('/pictures/1.npy', '/pictures/1.npy~')  # an editor's backup: a scratch file
    assert 1 not in view.co['pictures'] and view.lookup('/pictures/1.npy~') is not None


def test_all_refs_view_resolves_unique_digest_prefixes(repo: Repository) -> None:
    digest = repo.store.refs.branch_head('master') or ''
    view = AllRefsView(repo.store)
    assert view.lookup(f'/commits/{digest[:8]}/images/0.npy') is not None
    assert view.lookup(f'/commits/{digest[:8]}') is not None and view.lookup('/commits/ffff0000') is None
    assert [n for n, _ in view.list_names('/commits') or ()] == [digest]  # the listing: full digests
