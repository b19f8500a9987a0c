"""The remote commands as a shell user runs them: remote add/list/remove/ping, push, clone, fetch,
fetch-data (by column, by a keys file), verify --remote; each in a process of its own."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path

import numpy as np

from hangarfs import Repository
from tests.helpers import hangarfs_fails, hangarfs_ok, new_repository, run_hangarfs
from tests.remotes.conftest import RepoRemote
from tests.remotes.repos import array


def test_a_shell_session(tmp_path: Path, repo_remote: RepoRemote) -> None:
    src = new_repository(tmp_path / 'src')
    with closing(src.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(8, 8), dtype=np.uint8).update(
            {i: array('uint8', (8, 8), i) for i in range(10)}
        )
        co['images']['5'] = array('uint8', (8, 8), 55)  # a str key that reads like an int
        co.add_str_column('captions').update({f'c{i}': f'caption {i}' for i in range(3)})
        co.commit('data')
    s = Path(src.path)
    src_head = src.store.refs.branch_head('master')
    opts = (
        [f'--endpoint-url={repo_remote.options["endpoint_url"]}']
        if 'endpoint_url' in repo_remote.options
        else []
    )
    assert 'added remote origin' in hangarfs_ok(s, 'remote', 'add', 'origin', repo_remote.url, *opts)
    assert hangarfs_ok(s, 'remote', 'list') == f'origin\t{repo_remote.url}\n'
    assert 'push to it to create one' in hangarfs_fails(s, 'remote', 'ping', 'origin')
    out = hangarfs_ok(s, 'push', 'origin', 'master')
    assert 'pushed master to origin: (new branch) ->' in out and '14 samples' in out
    assert 'up to date' in hangarfs_ok(s, 'push', 'origin', 'master')
    assert 'answered in' in hangarfs_ok(s, 'remote', 'ping', 'origin')

    proc = run_hangarfs(
        'clone', repo_remote.url, str(tmp_path / 'work'), *opts, '--name', 'Bob', '--email', 'b@x.org'
    )
    assert proc.returncode == 0, proc.stderr
    assert 'branches master, 14 samples on the remote only; on branch master' in proc.stdout
    w = tmp_path / 'work'
    assert 'origin/master' in hangarfs_ok(w, 'remote', 'list', '-v')
    listed = hangarfs_ok(w, 'branch', 'list').splitlines()
    assert [line.split()[:2] for line in listed] == [['*', 'master'], ['origin/master', src_head[:12]]]
    keys = tmp_path / 'keys.txt'
    keys.write_text('3\n@5\n# a comment\n7.npy\n')
    out = hangarfs_ok(w, 'fetch-data', 'origin', 'origin/master', '-c', 'images', '--keys', str(keys))
    assert out.startswith('fetched 3 samples')
    repo = Repository(w)
    with closing(repo.checkout()) as co:
        assert (co['images']['5'] == array('uint8', (8, 8), 55)).all() and (
            co['images'][7] == array('uint8', (8, 8), 7)
        ).all()
    assert hangarfs_ok(w, 'fetch-data', 'origin', 'master', '-c', 'captions').startswith('fetched 3 samples')
    out = hangarfs_ok(w, 'fetch-data', 'origin', 'master')
    assert out.startswith('fetched 8 samples') and '6 were here already' in out
    assert 'no problems' in hangarfs_ok(w, 'verify')
    assert 'of 14 samples against their content digests: no problems' in hangarfs_ok(
        w, 'verify', '--remote', 'origin'
    )

    # a second clone by default name, from the directory the URL names (local remotes only)
    if repo_remote.kind == 'local':
        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            assert run_hangarfs('clone', repo_remote.url).returncode == 0
        finally:
            os.chdir(cwd)
        assert (tmp_path / 'team' / '.hangarfs').is_dir()
    assert 'fetch, merge, push' in _diverge_and_push(tmp_path, src, w)
    assert 'removed remote origin' in hangarfs_ok(w, 'remote', 'remove', 'origin')
    assert "no remote named 'origin'" in hangarfs_fails(w, 'fetch', 'origin')


def _diverge_and_push(tmp_path: Path, src: Repository, work: Path) -> str:
    with closing(src.checkout(write=True)) as co:
        co['captions']['x'] = 'from src'
        co.commit('src')
    hangarfs_ok(Path(src.path), 'push', 'origin', 'master')
    with closing(Repository(work).checkout(write=True)) as co:
        co['captions']['y'] = 'from work'
        co.commit('work')
    line = hangarfs_fails(work, 'push', 'origin', 'master')
    assert 'fetched' in hangarfs_ok(work, 'fetch', 'origin', 'master')
    return line
