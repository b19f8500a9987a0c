"""After a restart with unsynced staging writes, staging is checked, and set aside if damaged."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.engine import staging_guard


def _repo_with_staged_work(path: Path) -> Repository:
    repo = Repository(path, exists=False)
    repo.init(user_name='Ada', user_email='ada@example.org')
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', shape=(4,), dtype=np.int64)
        col[0] = np.arange(4)
        co.commit('one')
        col[1] = np.arange(4) + 1  # staged, not committed
    return repo


def _pretend_a_restart(staging: Path) -> None:
    (staging / staging_guard.MARK).write_text('a-boot-id-of-another-boot')


def test_a_clean_close_leaves_no_mark(tmp_path: Path) -> None:
    repo = _repo_with_staged_work(tmp_path / 'repo')
    assert not (Path(repo.path) / '.hangarfs' / 'staging' / staging_guard.MARK).exists()


def test_intact_staging_from_before_a_restart_is_kept(tmp_path: Path) -> None:
    repo = _repo_with_staged_work(tmp_path / 'repo')
    _pretend_a_restart(Path(repo.path) / '.hangarfs' / 'staging')
    with closing(repo.checkout(write=True)) as co:
        assert np.array_equal(co['x'][1], np.arange(4) + 1)


def test_damaged_staging_from_before_a_restart_is_set_aside(tmp_path: Path) -> None:
    repo = _repo_with_staged_work(tmp_path / 'repo')
    head = repo.store.refs.branch_head('master')
    staging = Path(repo.path) / '.hangarfs' / 'staging'
    _pretend_a_restart(staging)
    repo.store.close()
    from hangarfs.engine.lmdbenv import ENVIRONMENTS

    ENVIRONMENTS.forget(str(staging))
    data = staging / 'data.mdb'
    raw = bytearray(data.read_bytes())
    raw[8192:] = b'\xa5' * (len(raw) - 8192)  # every page but the two meta pages
    data.write_bytes(bytes(raw))
    fresh = Repository(repo.path)
    with pytest.warns(RuntimeWarning, match='set aside'):
        co = fresh.checkout(write=True)
    try:
        assert 1 not in co['x'] and np.array_equal(co['x'][0], np.arange(4))
        assert co.commit_hash == head
    finally:
        co.close()
    assert list((Path(repo.path) / '.hangarfs').glob('staging.lost-*'))
    fresh.verify_repo_integrity()
