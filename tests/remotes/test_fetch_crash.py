"""SIGKILL of a fetching process (``fetch_data``, ``clone``) at every checkpoint: nothing half-fetched
is ever read as valid, and running the command again completes it.

Checkpoints of ``fetch_data``: after each data file is written and fsynced but before any location
names it (on the writer thread), and after each checked batch is handed to that thread. Checkpoints
of a clone: after each metadata pack is cached.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np

from hangarfs import Repository
from hangarfs.backends.remote_repo import open_remote
from hangarfs.engine.remote.push import push
from hangarfs.engine.verify import verify_store
from hangarfs.errors import DataNotLocal
from tests.helpers import Children, new_repository
from tests.remotes.conftest import FAST_RETRY
from tests.remotes.repos import array

FETCH_CHILD = """
import sys, threading
import hangarfs.engine.remote.fetch_data as fetch_data
from hangarfs import Repository
from hangarfs.engine.remote.api import Remotes
lock = threading.Lock()  # batches are stored on a writer thread: one checkpoint at a time

def checkpoint(name):
    with lock:
        print('AT', name, flush=True)
        sys.stdin.readline()

class Batches:
    def begin(self, label, total): pass
    def advance(self, n): checkpoint('stored')
    def end(self): pass

fsync = fetch_data.fsync_paths
def fsync_then_stop(files):
    fsync(files)
    checkpoint('fsynced')
fetch_data.fsync_paths = fsync_then_stop
repo = Repository(sys.argv[1])
Remotes(repo, progress=Batches()).fetch_data('origin', branch='master')
print('DONE', flush=True)
"""

CLONE_CHILD = """
import sys, threading
from hangarfs import Repository
from hangarfs.engine.remote.clone import clone_repository
lock = threading.Lock()  # packs are downloaded by several threads: one checkpoint at a time

def checkpoint(name):
    with lock:
        print('AT', name, flush=True)
        sys.stdin.readline()

class Packs:
    def begin(self, label, total): pass
    def advance(self, n): checkpoint('meta-pack')
    def end(self): pass

clone_repository(Repository(sys.argv[1], exists=False), 'C', 'c@example.org', sys.argv[2], progress=Packs())
print('DONE', flush=True)
"""


def run_child(children: Children, code: str, args: list[str], stop_at: int | None) -> list[str]:
    proc = children.start(code, *args)
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


def remote_with_small_packs(tmp_path: Path) -> str:
    src = new_repository(tmp_path / 'src')
    with closing(src.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(16, 16), dtype=np.uint8).update(
            {i: array('uint8', (16, 16), i) for i in range(60)}
        )
        co.add_str_column('captions').update({i: f'caption {i} ' * 30 for i in range(30)})
        co.commit('data')
    url = str(tmp_path / 'remote')
    src.remote.add('origin', url)
    with open_remote(url, create=True, pack_size=6 * 1024, retry=FAST_RETRY) as remote:
        push(src.store, 'origin', 'master', remote=remote)
    return url


def check_reads(repo: Repository) -> int:
    """Every sample reads as its original or is not local; returns how many are local."""
    local = 0
    with closing(repo.checkout()) as co:
        for i in range(60):
            try:
                assert (co['images'][i] == array('uint8', (16, 16), i)).all()
                local += 1
            except DataNotLocal:
                pass
        for i in range(30):
            try:
                assert co['captions'][i] == f'caption {i} ' * 30
                local += 1
            except DataNotLocal:
                pass
    return local


def test_sigkill_during_fetch_data_then_fetch_again(tmp_path: Path) -> None:
    url = remote_with_small_packs(tmp_path)
    children = Children()
    try:
        probe = Repository(tmp_path / 'probe', exists=False)
        probe.clone('C', 'c@example.org', url)
        steps = run_child(children, FETCH_CHILD, [probe.path], None)
        assert steps.count('fsynced') >= 3 and len(steps) == 2 * steps.count('fsynced'), steps
        for n in range(len(steps)):
            repo = Repository(tmp_path / f'clone{n}', exists=False)
            repo.clone('C', 'c@example.org', url)
            run_child(children, FETCH_CHILD, [repo.path], n)
            report = verify_store(repo.store)
            assert report.ok, report.problems  # what locations name is complete and intact
            assert check_reads(repo) < 90 or n == len(steps) - 1
            repo.remote.fetch_data('origin', branch='master')  # again: it completes
            assert check_reads(repo) == 90 and verify_store(repo.store).remote == 0
    finally:
        children.cleanup()


def test_sigkill_during_clone_then_clone_again(tmp_path: Path) -> None:
    url = remote_with_small_packs(tmp_path)
    children = Children()
    try:
        steps = run_child(children, CLONE_CHILD, [str(tmp_path / 'probe'), url], None)
        assert len(steps) >= 2, steps
        for n in range(len(steps)):
            target = tmp_path / f'clone{n}'
            run_child(children, CLONE_CHILD, [str(target), url], n)
            repo = Repository(target)
            assert repo.store.refs.branch_head('master') == ''  # no commit before the fetch completes
            assert verify_store(repo.store).ok
            assert repo.clone('C', 'c@example.org', url) == 'master'  # resumes
            repo.remote.fetch_data('origin', branch='master')
            assert check_reads(repo) == 90
    finally:
        children.cleanup()
