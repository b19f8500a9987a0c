"""git habits in the engine (staging-mount issue, item 16): relative refs and HEAD, ``log -n`` in git's
one-line format, verify covering staged samples, and renaming a column without copying its data."""

from __future__ import annotations

import re
from contextlib import closing
from typing import Any

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.engine.column_ops import rename_column
from hangarfs.engine.store import RepoStore
from hangarfs.engine.verify import verify_store
from hangarfs.errors import ColumnExists, RefNotFound
from tests.helpers import flip_byte


@pytest.fixture
def history(repo: Repository) -> tuple[Repository, list[str]]:
    """master: c0 - c1 - c2 - m (merge of dev: c0 - d1); returns the commits [c0, c1, c2, d1, m]."""
    commits = []
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')[0] = 'zero'
        commits.append(co.commit('c0'))
    repo.create_branch('dev')
    with closing(repo.checkout(write=True, branch='master')) as co:
        for i in (1, 2):
            co['s'][i] = str(i)
            commits.append(co.commit(f'c{i}'))
    with closing(repo.checkout(write=True, branch='dev')) as co:
        co['s']['d'] = 'dev'
        commits.append(co.commit('d1'))
    commits.append(repo.merge('m', master_branch='master', dev_branch='dev'))
    with closing(repo.checkout(write=True, branch='master')):  # the writer back on master: HEAD is master
        pass
    return repo, commits


def test_relative_refs_walk_first_and_nth_parents(history: tuple[Repository, list[str]]) -> None:
    repo, (c0, c1, c2, d1, m) = history
    resolve = repo.store.refs.resolve
    assert resolve('master').commit == m
    assert resolve('master~1').commit == c2 and resolve('master^').commit == c2
    assert resolve('master~2').commit == c1 and resolve('master~1~1').commit == c1
    assert resolve('master^2').commit == d1 and resolve('master^2~1').commit == c0
    assert resolve('master^0').commit == m and resolve(m[:10] + '~3').commit == c0
    assert resolve('HEAD').commit == m and resolve('HEAD').branch == 'master'
    assert resolve('HEAD~1').commit == c2
    with closing(repo.checkout(commit='master~2')) as co:
        assert co['s'][1] == '1' and 2 not in co['s']
    assert repo.diff('master~1', 'master').columns['s'].added == {'d'}
    with pytest.raises(RefNotFound, match='has no parent'):
        resolve('master~9')
    with pytest.raises(RefNotFound, match='1 parent'):
        resolve('dev^2')
    with pytest.raises(RefNotFound):
        resolve('nope~1')


def test_head_follows_the_writer_branch(history: tuple[Repository, list[str]]) -> None:
    repo, (_, _, _, d1, m) = history
    with closing(repo.checkout(write=True, branch='dev')):
        pass
    assert repo.store.refs.resolve('HEAD').commit == d1 and repo.store.refs.resolve('HEAD').branch == 'dev'
    assert repo.store.refs.resolve('master').commit == m


def log_of(repo: Repository, capsys: Any, **options: Any) -> list[str]:
    capsys.readouterr()
    repo.log(**options)
    return [re.sub('[0-9a-f]{12}', 'C', line) for line in capsys.readouterr().out.splitlines()]


def test_log_prints_git_decorations_and_takes_a_count(
    history: tuple[Repository, list[str]], capsys: Any
) -> None:
    repo, _ = history
    repo.create_tag('v1', commit='master~1')
    assert log_of(repo, capsys, max_count=3) == ['* C (HEAD -> master) m', '* C (dev) d1', '* C (tag: v1) c2']
    assert log_of(repo, capsys, max_count=1, graph=True) == ['* C (HEAD -> master) m']
    assert len(log_of(repo, capsys)) == 5 and log_of(repo, capsys, max_count=0) == ['(no commits yet)']
    graph = log_of(repo, capsys, graph=True)
    assert graph[0] == '*   C (HEAD -> master) m'  # the same label as the plain log


def test_verify_covers_staged_samples(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        rng = np.random.default_rng(0)
        co.add_ndarray_column('big', shape=(256, 256), dtype=np.float32).update(
            {i: rng.random((256, 256), dtype=np.float32) for i in range(8)}  # 2 MB: a sealed file at once
        )
        co.add_str_column('s')['x'] = 'staged, inline'
    report = verify_store(repo.store)
    assert report.ok and report.staged == 9 and '9 of them staged' in str(report)
    (path,) = (repo.store.dir / 'data').rglob('*.h5')
    flip_byte(path, path.stat().st_size // 2)
    report = verify_store(RepoStore(repo.path))  # a fresh store: nothing read before is cached
    assert not report.ok and any('big (staged)' in p for p in report.problems), report.problems


def test_rename_column_moves_samples_by_reference(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(2, 2), dtype=np.uint8).update(
            {i: np.full((2, 2), i, np.uint8) for i in range(100)}
        )
        co.add_str_column('scans', contains_subsamples=True)['p'] = {'a': 'x', 'b': 'y'}
        co.commit('base')
    with closing(repo.checkout(write=True)) as co:
        co['images'][100] = np.full((2, 2), 100, np.uint8)  # staged, not committed
        rename_column(co, 'images', 'pictures')
        rename_column(co, 'scans', 'volumes')
        with pytest.raises(ColumnExists):
            rename_column(co, 'pictures', 'volumes')
        assert 'images' not in co.columns and len(co['pictures']) == 101
        assert dict(co['volumes']['p'].items()) == {'a': 'x', 'b': 'y'}
        digest = co.commit('renamed')
    diff = repo.diff('master~1', digest)
    assert diff.schema_changes.added == {'pictures', 'volumes'}
    assert diff.schema_changes.deleted == {'images', 'scans'}
    with closing(repo.checkout()) as co:
        assert np.array_equal(co['pictures'][100], np.full((2, 2), 100)) and len(co['pictures']) == 101
    assert verify_store(repo.store).ok
