"""SIGKILL of a pushing process between each step of ``push``, then a second push.

The child pushes a repository's master with small packs, stopping at a checkpoint after every data
and metadata pack, after each commit object, and before and after the refs move. For each checkpoint
one child is killed there. The remote must then be consistent (fsck finds no problem; the refs name
the old state or the new one, nothing between), and a second push must complete, re-using what
arrived, and leave a remote from which a clone gets exactly the pushed history and data.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.backends.remote_repo import open_remote
from tests.helpers import Children, new_repository
from tests.remotes.conftest import RepoRemote, S3Server
from tests.remotes.repos import array, contents

CHILD = """
import json, sys
from hangarfs import Repository
from hangarfs.backends.remote_repo import open_remote
from hangarfs.engine.remote.config import get_remote
from hangarfs.engine.remote.push import push

repo = Repository(sys.argv[1])
settings = get_remote(repo.store, 'origin')
remote = open_remote(settings.url, create=True, pack_size=8 * 1024, retry=settings.retry_policy(),
                     **settings.store_options())
remote.concurrency = 1  # one pack at a time: the checkpoints fall between packs

def checkpoint(name):
    print('AT', name, flush=True)
    sys.stdin.readline()

class Packs:
    label = ''
    def begin(self, label, total):
        self.label = label.rsplit(': ', 1)[-1]
    def advance(self, n):
        checkpoint(self.label + '-pack')
    def end(self):
        pass

put_commit, update_refs = remote.put_commit, remote.update_refs
def put_commit_then_stop(cid, body):
    put_commit(cid, body)
    checkpoint('commit')
def update_refs_between_stops(*args, **kwargs):
    checkpoint('before-refs')
    out = update_refs(*args, **kwargs)
    checkpoint('refs')
    return out
remote.put_commit, remote.update_refs = put_commit_then_stop, update_refs_between_stops
push(repo.store, 'origin', 'master', progress=Packs(), remote=remote)
print('DONE', flush=True)
"""


def source(path: Path) -> Repository:
    repo = new_repository(path)
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(16, 16), dtype=np.uint8).update(
            {i: array('uint8', (16, 16), i) for i in range(80)}
        )
        co.add_str_column('captions').update({i: f'caption {i} ' * 20 for i in range(40)})
        co.commit('first')
    with closing(repo.checkout(write=True)) as co:
        co['images'].update({i: array('uint8', (16, 16), 500 + i) for i in range(80, 100)})
        co.commit('second')
    return repo


def run_child(children: Children, repo: Path, stop_at: int | None) -> list[str]:
    """Push in a child; SIGKILL it at checkpoint number ``stop_at`` (None: let it finish)."""
    proc = children.start(CHILD, str(repo))
    seen: list[str] = []
    assert proc.stdout is not None and proc.stdin is not None
    for line in proc.stdout:
        if line.startswith('DONE'):
            break
        assert line.startswith('AT '), line
        if len(seen) == stop_at:
            Children.kill(proc)
            return seen
        seen.append(line.split()[1])
        proc.stdin.write('\n')
        proc.stdin.flush()
    proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ''
    return seen


def fresh_remote(tmp_path: Path, base: RepoRemote, n: int, s3: S3Server | None) -> RepoRemote:
    if base.kind == 'local':
        return RepoRemote('local', str(tmp_path / f'remote{n}'), base.options)
    assert s3 is not None
    return RepoRemote('s3', f's3://{s3.new_bucket()}/crash', base.options)


def test_sigkill_between_every_step_then_push_again(
    tmp_path: Path, repo_remote: RepoRemote, request: pytest.FixtureRequest
) -> None:
    s3 = request.getfixturevalue('s3_server') if repo_remote.kind == 's3' else None
    repo = source(tmp_path / 'repo')
    expected = {ref: contents(repo, ref) for ref in ('master', 'master~1')}
    head = repo.store.refs.branch_head('master')
    children = Children()
    try:
        repo.remote.add('origin', str(tmp_path / 'probe'))
        steps = run_child(children, Path(repo.path), None)  # where the checkpoints fall
        repo.remote.remove('origin')
        assert steps.count('data-pack') >= 3 and steps[-3:] == ['commit', 'before-refs', 'refs'], steps
        for n in range(len(steps)):
            target = fresh_remote(tmp_path, repo_remote, n, s3)
            target.add_to(repo)
            done = run_child(children, Path(repo.path), n)
            assert len(done) == n
            remote = open_remote(target.url, **target.store_options())
            report = remote.fsck()
            assert report.ok, (n, steps[n - 1] if n else 'start', report.problems)
            refs = remote.read_refs()
            assert dict(refs.branches) in ({}, {'master': head}), (n, refs.branches)
            if refs.branches:  # the refs name a commit only once everything it needs is there
                assert done[-1] in ('before-refs', 'refs') or n == len(steps)
            remote.close()
            repo.remote.push('origin', 'master')  # the second push completes
            again = repo.remote.last_report
            if 'data-pack' in done:
                assert again.samples < 140, (n, again)  # what arrived before the kill is re-used
            clone = Repository(tmp_path / f'clone{n}', exists=False)
            clone.clone('C', 'c@example.org', target.url, **target.options)
            clone.remote.fetch_data('origin', branch='master', retrieve_all_history=True)
            assert {ref: contents(clone, ref) for ref in ('master', 'master~1')} == expected, n
            repo.remote.remove('origin')
    finally:
        children.cleanup()
