"""A store collected by the cyclic garbage collector while this thread opens an LMDB environment.

The collector can run at any allocation, including one inside ``lmdb.open`` while the environment
registry's lock is held; the store's finalizer must then not wait on that lock (Hangar-compat issue,
bug 1). The check runs in a child process, because a deadlocked process ignores pytest-timeout.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import Children

# The child leaves a Repository (and its store) in a reference cycle, then opens environments of new
# repositories with a profile hook that runs a full collection each time lmdb.open is entered: the
# cycle is freed right there, inside the registry's lock.
COLLECT_INSIDE_OPEN = """
    from contextlib import closing
    import gc, sys
    import lmdb
    from hangarfs import Repository

    base = sys.argv[1]
    Repository(base + '/first', exists=False).init(user_name='Ada', user_email='ada@example.org')

    def collect_in_open(frame, event, arg):
        if event == 'c_call' and arg is lmdb.open:
            gc.collect()

    for i in range(3):
        cycle = {'repo': Repository(base + '/first')}
        cycle['self'] = cycle
        cycle['repo'].log()  # opens the store's history environment
        del cycle
        sys.setprofile(collect_in_open)
        repo = Repository(base + f'/new{i}', exists=False)
        repo.init(user_name='Ada', user_email='ada@example.org')
        sys.setprofile(None)
        with closing(repo.checkout(write=True)) as co:
            co.add_str_column('notes')['a'] = 'x'
            co.commit('one')
        print('opened', i, flush=True)
    print('done', flush=True)
"""


def test_store_freed_by_gc_inside_lmdb_open_does_not_deadlock(tmp_path: Path, children: Children) -> None:
    proc = children.start(COLLECT_INSIDE_OPEN, str(tmp_path))
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        children.kill(proc)
        pytest.fail('the process hung: a finalizer waited on the environment registry lock')
    assert proc.returncode == 0, err
    assert out.splitlines()[-1] == 'done'


def test_collected_stores_release_their_environments(tmp_path: Path, children: Children) -> None:
    """Stores dropped without close() give their environments back at the next registry call."""
    out = children.run(
        """
        import gc, sys
        from hangarfs import Repository
        from hangarfs.engine.lmdbenv import ENVIRONMENTS
        path = sys.argv[1] + '/r'
        Repository(path, exists=False).init(user_name='Ada', user_email='ada@example.org')
        for _ in range(50):
            cycle = {'repo': Repository(path)}
            cycle['self'] = cycle
            del cycle
            gc.collect()
        Repository(path).close()  # any registry call releases what finalizers queued
        print(len(ENVIRONMENTS._envs), flush=True)
        """,
        str(tmp_path),
    )
    assert int(out.split()[-1]) <= 1
