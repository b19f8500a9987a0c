"""A forked child opens a repository its parent has open (as a DataLoader worker does).

py-lmdb refuses to open an environment whose files an inherited handle holds, and LMDB forbids
using an inherited handle; the registry closes the inherited one in the child and opens its own.
Runs in a child interpreter, which itself forks, so that pytest's own process never forks.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np

from tests.helpers import Children, new_repository

FORK_AND_READ = """
    import os, sys
    import numpy as np
    from contextlib import closing

    from hangarfs import Repository

    repo = Repository(sys.argv[1])
    co = repo.checkout()
    parent_value = co['x'][3]
    pid = os.fork()
    if pid == 0:  # the child: its own checkout of the same repository, read and written
        try:
            child = Repository(sys.argv[1]).checkout()
            ok = child['x'][3].tolist() == [3, 3] and len(child['x']) == 10
            with closing(Repository(sys.argv[1]).checkout(write=True)) as w:
                w['x'][3] = np.array([7, 7])
                w.commit('from the child')
            os._exit(0 if ok else 1)
        except BaseException as err:
            print('child:', repr(err), file=sys.stderr, flush=True)
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    # the parent's handles still work, and see the child's commit
    assert co['x'][3].tolist() == parent_value.tolist() == [3, 3]
    print(Repository(sys.argv[1]).checkout()['x'][3].tolist())
"""


def test_a_forked_child_opens_the_repository_its_parent_has_open(tmp_path: Path, children: Children) -> None:
    repo = new_repository(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('x', shape=(2,), dtype=np.int64).update(
            {k: np.array([k, k]) for k in range(10)}
        )
        co.commit('ten')
    assert children.run(FORK_AND_READ, str(tmp_path / 'repo')).strip() == '[7, 7]'
