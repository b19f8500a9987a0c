"""The filesystem logic in-process: fs/view.py, fs/names.py and fs/npy.py without FUSE."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hangarfs import Repository
from hangarfs.errors import InvalidKey
from hangarfs.fs.names import key_to_name, name_to_key, parse_sample_file_name
from hangarfs.fs.npy import NpyFormatError, header_for, parse_npy
from hangarfs.fs.view import AllRefsView, BranchView, CommitView, InfoView, Node
from tests.helpers import npy_bytes, wait_until

from .conftest import ALL_DTYPES, make_repo


def read_all(view: CommitView | BranchView | AllRefsView | InfoView, path: str) -> bytes:
    node = view.lookup(path)
    assert node is not None, path
    return view.read(node, node.size, 0)


def names(view: object, path: str) -> list[str]:
    entries = view.list(path)  # type: ignore[attr-defined]
    assert entries is not None, path
    return [n for n, _ in entries]


# ------------------------------------------------------------------------------------------ names and npy


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_int_keys_round_trip_through_file_names(key: int) -> None:
    assert name_to_key(key_to_name(key)) == key
    assert parse_sample_file_name(key_to_name(key) + '.npy', 'ndarray') == key


@given(st.from_regex(r'[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,40}', fullmatch=True))
def test_str_keys_round_trip_and_never_collide_with_ints(key: str) -> None:
    name = key_to_name(key)
    assert name_to_key(name) == key
    assert type(name_to_key(name)) is str
    if key.isdigit() and (key == '0' or not key.startswith('0')):
        assert name == '@' + key


@pytest.mark.parametrize('bad', ['@abc', '@05', '.hidden', 'a/b', '', 'x' * 256, '-' * 0])
def test_names_that_are_no_key_are_refused(bad: str) -> None:
    with pytest.raises(InvalidKey):
        name_to_key(bad)


def test_file_extension_must_fit_the_column_kind() -> None:
    with pytest.raises(InvalidKey, match=r'\.npy'):
        parse_sample_file_name('3.txt', 'ndarray')
    assert parse_sample_file_name('3.txt', 'str') == 3
    assert parse_sample_file_name('3.bin', 'bytes') == 3


shapes = st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(ALL_DTYPES), shapes)
def test_header_plus_bytes_is_exactly_numpy_save(dtype: str, shape: tuple[int, ...]) -> None:
    arr = np.zeros(shape, dtype)
    assert header_for(arr.dtype.str, shape) + arr.tobytes() == npy_bytes(arr)
    header, back = parse_npy(npy_bytes(arr))
    assert (
        back.shape == shape
        and back.dtype == arr.dtype
        and header.data_offset == len(header_for(arr.dtype.str, shape))
    )


def test_parse_npy_rejects_what_cannot_be_stored() -> None:
    good = npy_bytes(np.arange(10, dtype=np.int32))
    with pytest.raises(NpyFormatError, match='magic'):
        parse_npy(b'not an npy file at all')
    with pytest.raises(NpyFormatError, match='truncated'):
        parse_npy(good[:40])
    with pytest.raises(NpyFormatError, match='truncated'):
        parse_npy(good[:-1])
    with pytest.raises(NpyFormatError, match='longer'):
        parse_npy(good + b'\x00')
    with pytest.raises(NpyFormatError, match='object'):
        parse_npy(npy_bytes(np.array([{}], dtype=object), allow_pickle=True))
    with pytest.raises(NpyFormatError, match='structured'):
        parse_npy(npy_bytes(np.zeros(3, dtype=[('a', 'i4'), ('b', 'f4')])))
    fortran = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    _, back = parse_npy(npy_bytes(fortran))
    assert back.flags.c_contiguous and np.array_equal(back, fortran)


# ------------------------------------------------------------------------------------------ commit view


def test_commit_view_layout_reads_and_ranges(rich_repo: tuple[Repository, dict]) -> None:
    repo, expected = rich_repo
    commit = repo.store.refs.branch_head('master') or ''
    view = CommitView(repo.store, commit, ref='master')
    assert view.is_immutable()
    assert names(view, '/') == ['.hangarfs', *sorted(expected)]
    assert names(view, '/.hangarfs') == ['commit.json', 'metadata']
    assert names(view, '/.hangarfs/metadata') == ['note', 'source']
    info = json.loads(read_all(view, '/.hangarfs/commit.json'))
    assert info['commit'] == commit and info['message'] == 'rich repository'
    for dt in ALL_DTYPES:
        for key, arr in expected[f'dt_{dt}'].items():  # type: ignore[attr-defined]
            assert read_all(view, f'/dt_{dt}/{key}.npy') == npy_bytes(arr)
    listing = names(view, '/images')
    assert listing[0] == '.schema.json' and '@5.npy' in listing and 'cat.7.npy' in listing
    assert listing[1:4] == ['0.npy', '1.npy', '2.npy']  # int keys ascending, then str keys
    big = expected['volumes']['big']  # type: ignore[index]
    raw = npy_bytes(big)
    node = view.lookup('/volumes/big.npy')
    assert node is not None and node.size == len(raw)
    for offset, size in ((0, 10), (60, 200), (len(raw) // 3, 1 << 20), (len(raw) - 5, 100)):
        assert view.read(node, size, offset) == raw[offset : offset + size]
    assert read_all(view, '/captions/1.txt').decode() == 'ünïcödé ✓'
    assert read_all(view, '/blobs/zero.bin') == b''
    assert names(view, '/scans') == ['.schema.json', '7', 'patient1']
    assert names(view, '/scans/patient1') == ['axial.npy', 'coronal.npy']
    assert names(view, '/nothing') == ['.schema.json']
    for missing in (
        '/nope',
        '/images/999.npy',
        '/images/0.txt',
        '/images/a/b',
        '/scans/patient1/x.npy',
        '/.hangarfs/nope',
        '/.hangarfs/metadata/nope',
        '/images/..npy',
    ):
        assert view.lookup(missing) is None, missing
    assert view.list('/images/0.npy') is None


def test_listing_with_nodes_gives_sizes_without_reading(rich_repo: tuple[Repository, dict]) -> None:
    repo, expected = rich_repo
    view = CommitView(repo.store, repo.store.refs.branch_head('master') or '')
    entries = dict(view.list('/volumes', with_nodes=True))  # type: ignore[arg-type]
    big = expected['volumes']['big']  # type: ignore[index]
    node = entries['big.npy']
    assert isinstance(node, Node) and node.size == len(npy_bytes(big))
    assert entries['empty.npy'].size == len(npy_bytes(np.zeros((0, 4, 4), np.float32)))  # type: ignore[union-attr]


def test_listing_without_nodes_names_the_same_entries(rich_repo: tuple[Repository, dict]) -> None:
    """The path a listing of a huge column takes (no attributes) agrees with the attribute path, and
    still tells the sample directories of a nested column from files."""
    repo, _ = rich_repo
    view = CommitView(repo.store, repo.store.refs.branch_head('master') or '')
    for column in ('images', 'volumes', 'captions', 'blobs', 'scans', 'dt_int64'):
        lean = list(view.list(f'/{column}', with_nodes=False) or [])
        full = list(view.list(f'/{column}', with_nodes=True) or [])
        assert [n for n, _ in lean] == [n for n, _ in full], column
    assert '@5.npy' in names(view, '/images') and 'cat.7.npy' in names(view, '/images')
    nested = dict(view.list('/scans', with_nodes=False) or [])
    assert nested['patient1'] is not None and nested['patient1'].is_dir
    assert nested['7'] is not None and nested['7'].is_dir


def test_branch_view_moves_within_its_interval_and_old_nodes_keep_reading(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')[0] = 'old'
        co.commit('one')
    view = BranchView(repo.store, 'master', interval=0.05)
    old_node = view.lookup('/s/0.txt')
    assert old_node is not None
    with closing(repo.checkout(write=True)) as co:
        co['s'][0] = 'new and longer'
        co['s'][1] = 'added'
        co.commit('two')
    wait_until(lambda: read_all(view, '/s/0.txt') != b'old', what='the branch view to move to the new commit')
    assert read_all(view, '/s/0.txt') == b'new and longer'
    assert names(view, '/s') == ['.schema.json', '0.txt', '1.txt']
    assert view.read(old_node, 100, 0) == b'old'


def test_all_refs_view_and_info_view(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')[0] = 'one'
        c1 = co.commit('one')
    repo.create_branch('dev')
    view = InfoView(AllRefsView(repo.store), {'pid': 123})
    assert names(view, '/') == ['.hangarfs', 'branches', 'tags', 'commits']
    assert names(view, '/.hangarfs') == ['mount.json']
    assert json.loads(read_all(view, '/.hangarfs/mount.json'))['pid'] == 123
    assert names(view, '/branches') == ['dev', 'master']
    assert names(view, '/commits') == [c1]
    assert read_all(view, f'/commits/{c1}/s/0.txt') == b'one'
    assert read_all(view, '/branches/dev/s/0.txt') == b'one'
    assert view.lookup('/branches/nope') is None and view.lookup('/commits/' + '0' * 64) is None
    assert view.lookup('/elsewhere') is None


def test_empty_branch_shows_an_empty_root(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / 'repo')
    view = BranchView(repo.store, 'master')
    assert names(view, '/') == ['.hangarfs']
    assert json.loads(read_all(view, '/.hangarfs/commit.json'))['commit'] is None
