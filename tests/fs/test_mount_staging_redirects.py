"""Shell redirects into the staging mount: bash opens, duplicates and closes the file, so one open
file is flushed more than once; what is staged is the file's state at its last close, and a file that
is invalid then stages nothing and leaves what was there (staging-mount issue, item 1)."""

from __future__ import annotations

import json
import subprocess
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository

from .conftest import Mounts, make_repo, run_cli

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(180)]


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(28, 28), dtype=np.uint8).update(
            {i: np.full((28, 28), i, np.uint8) for i in range(10)}
        )
        co.add_str_column('captions').update({i: f'caption {i}' for i in range(10)})
        co.add_bytes_column('blobs')[0] = b'\x00old'
        co.commit('base')
    return repo


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(['bash', '-c', script], cwd=cwd, capture_output=True, text=True, timeout=60)


def daemon_log(mp: Path) -> str:
    return Path(json.loads((mp / '.hangarfs' / 'mount.json').read_text())['log']).read_text()


def committed(repo: Repository, column: str, key: object) -> object:
    co = repo.checkout(branch='master')
    try:
        return co[column].get(key)
    finally:
        co.close()


def test_invalid_utf8_through_a_redirect_keeps_the_old_caption(
    repo: Repository, mounts: Mounts, tmp_path: Path
) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    bash(r"printf '\xff\xfe' > captions/7.txt", mp)
    assert (mp / 'captions' / '7.txt').read_text() == 'caption 7'
    assert 'captions/7.txt: not staged' in daemon_log(mp)
    bash("printf 'new caption' > captions/8.txt", mp)
    run_cli('-C', repo.path, 'commit', '-m', 'after redirects')
    assert committed(repo, 'captions', 7) == 'caption 7'
    assert committed(repo, 'captions', 8) == 'new caption'


def test_invalid_redirect_into_a_new_name_stages_nothing(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    bash(r"printf '\xff' > captions/new.txt; echo 'not an array' > images/new.npy", mp)
    assert not (mp / 'captions' / 'new.txt').exists()
    assert not (mp / 'images' / 'new.npy').exists()
    status = run_cli('-C', repo.path, 'status').stdout
    assert 'new' not in status


def test_valid_redirect_of_a_npy_stages_it_without_a_spurious_warning(
    repo: Repository, mounts: Mounts, tmp_path: Path
) -> None:
    good = tmp_path / 'good.npy'
    np.save(good, np.full((28, 28), 200, np.uint8))
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    proc = bash(f'cat {good} > images/600.npy && cat {good} > images/3.npy', mp)
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(np.load(mp / 'images' / '600.npy'), np.full((28, 28), 200, np.uint8))
    assert np.array_equal(np.load(mp / 'images' / '3.npy'), np.full((28, 28), 200, np.uint8))
    assert 'not staged' not in daemon_log(mp)


def test_bytes_redirects_stage_the_final_content(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    proc = bash("{ printf 'ab'; printf 'cd'; } > blobs/0.bin; printf 'xyz' >> blobs/0.bin", mp)
    assert proc.returncode == 0, proc.stderr
    run_cli('-C', repo.path, 'commit', '-m', 'bytes')
    assert committed(repo, 'blobs', 0) == b'abcdxyz'


def test_truncating_redirect_of_a_str_sample_stages_the_empty_string(
    repo: Repository, mounts: Mounts
) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    bash(': > captions/2.txt', mp)
    run_cli('-C', repo.path, 'commit', '-m', 'empty caption')
    assert committed(repo, 'captions', 2) == ''
