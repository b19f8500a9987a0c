"""Inode numbers of the low-level adapter (fs/inodes.py), without FUSE: what each number stands for."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np

from hangarfs.fs.inodes import POSITIONAL, ROOT, InodeTable, join, split
from hangarfs.fs.view import CommitView, Node

from .conftest import make_repo


def file_node(version: bytes, size: int = 10) -> Node:
    return Node('file', size, 0, version, content=b'x' * size)


def dir_node() -> Node:
    return Node('dir', 0, 0, b'commit')


def test_a_file_number_stands_for_a_version_and_a_directory_number_for_a_path() -> None:
    t = InodeTable()
    a = t.entry('/c/1.npy', file_node(b'v1'))
    assert t.entry('/c/1.npy', file_node(b'v1')) == a  # same bytes: same number, one more lookup
    b = t.entry('/c/1.npy', file_node(b'v2'))
    assert b != a  # new bytes: a new number, and the old one still reads the old version
    assert t.file_node(a).version == b'v1' and t.file_node(b).version == b'v2'  # type: ignore[union-attr]
    assert t.entry('/c/1.npy', file_node(b'v2', size=11)) != b  # a digest only counts with its size
    d = t.entry('/c', dir_node())
    assert t.entry('/c', Node('dir', 0, 5, b'another commit')) == d
    assert t.path_of(d) == '/c' and t.known_dir('/c') == d and t.path_of(ROOT) == '/'


def test_numbers_by_path_for_the_staging_mount() -> None:
    t = InodeTable()
    a = t.entry('/c/1.npy', file_node(b''), by_version=False)
    assert t.entry('/c/1.npy', file_node(b'', size=99), by_version=False) == a
    assert t.file_node(a).size == 99  # type: ignore[union-attr]  (the newest state of the path)


def test_forget_frees_a_number_after_its_last_lookup_and_never_the_root() -> None:
    t = InodeTable()
    a = t.entry('/x.npy', file_node(b'v'))
    t.entry('/x.npy', file_node(b'v'))
    t.forget(a, 1)
    assert t.path_of(a) == '/x.npy'
    t.forget(a, 1)
    assert t.path_of(a) is None and t.known_file('/x.npy') is None
    assert t.entry('/x.npy', file_node(b'v')) != a  # numbers are never reused
    t.forget(ROOT, 10)
    assert t.path_of(ROOT) == '/'


def test_rename_and_unlink_through_the_mount_move_and_orphan_numbers() -> None:
    t = InodeTable()
    a = t.entry('/c/a.npy', file_node(b'', 1), by_version=False)
    b = t.entry('/c/b.npy', file_node(b'', 2), by_version=False)
    t.moved('/c/a.npy', '/c/b.npy')  # a replaces b
    assert t.path_of(a) == '/c/b.npy' and t.path_of(b) is None
    t.removed('/c/b.npy')
    assert t.path_of(a) is None


def test_positional_numbers_resolve_in_the_state_they_were_listed_in(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('x', shape=(3,), dtype=np.int16).update(
            {i: np.full(3, i, np.int16) for i in range(5)}
        )
        c1 = co.commit('one')
        co['x'][2] = np.full(3, -2, np.int16)
        c2 = co.commit('two')
    v1, v2 = CommitView(repo.store, c1), CommitView(repo.store, c2)
    t = InodeTable()
    slot1, listing1 = t.listing('/x', v1, '/x')
    slot2, listing2 = t.listing('/x', v2, '/x')
    assert slot1 != slot2 and t.listing('/x', v1, '/x')[0] == slot1  # one slot per directory and state
    listing1.names.extend(['0.npy', '1.npy', '2.npy'])
    listing2.names.extend(['0.npy', '1.npy', '2.npy'])
    old, new = t.positional(slot1, 2), t.positional(slot2, 2)
    assert old & POSITIONAL and t.path_of(old) == t.path_of(new) == '/x/2.npy'
    assert t.file_node(old).version == v1.lookup('/x/2.npy').version  # type: ignore[union-attr]
    assert t.file_node(new).version == v2.lookup('/x/2.npy').version  # type: ignore[union-attr]
    assert t.file_node(old).version != t.file_node(new).version  # type: ignore[union-attr]
    assert t.file_node(t.positional(slot1, 7)) is None  # never handed out
    t.forget(old, 1)  # positional numbers live as long as their listing
    assert t.path_of(old) == '/x/2.npy'


def test_join_and_split() -> None:
    assert join('/', 'a') == '/a' and join('/a', 'b') == '/a/b'
    assert split('/a') == ('/', 'a') and split('/a/b.npy') == ('/a', 'b.npy')


def test_a_renamed_directory_takes_the_numbers_below_it_along() -> None:
    t = InodeTable()
    d = t.entry('/c', dir_node())
    sub = t.entry('/c/p1', dir_node())
    a = t.entry('/c/p1/a.npy', file_node(b'', 1), by_version=False)
    other = t.entry('/cc/b.npy', file_node(b'', 1), by_version=False)  # a name that only starts alike
    t.moved('/c', '/d')
    assert (t.path_of(d), t.path_of(sub), t.path_of(a)) == ('/d', '/d/p1', '/d/p1/a.npy')
    assert t.known_dir('/d/p1') == sub and t.known_dir('/c') is None and t.known_file('/c/p1/a.npy') is None
    assert t.path_of(other) == '/cc/b.npy'
