"""Reading ahead of sequential readers (fs/readahead.py), in-process on a real compressed sample."""

from __future__ import annotations

import random
from contextlib import closing
from pathlib import Path

import numpy as np

from hangarfs.fs.readahead import ReadAhead
from hangarfs.fs.view import CommitView

from .conftest import make_repo


def test_read_ahead_gives_the_same_bytes_and_prepares_sequential_pieces(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / 'repo')
    arr = np.cumsum(np.random.default_rng(1).standard_normal((40, 256, 256)), axis=0).astype(np.float32)
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('v', shape=arr.shape, dtype=np.float32, backend='hdf5')
        col[0] = arr
        commit = co.commit('one')
    view = CommitView(repo.store, commit)
    node = view.lookup('/v/0.npy')
    assert node is not None and node.size > 10 << 20
    whole = view.read(node, node.size, 0)
    ahead = ReadAhead(view.read, depth=2, min_size=1 << 20)
    try:
        piece = 1 << 20
        got = b''.join(ahead.read(node, piece, off) for off in range(0, node.size, piece))
        assert got == whole
        assert ahead.hits >= node.size // piece - 2 and ahead.misses <= 2
        rnd = random.Random(3)
        for _ in range(30):  # a reader that jumps around gets exact bytes too
            off, size = rnd.randrange(node.size), rnd.choice([4096, 65536, piece])
            assert ahead.read(node, size, off) == whole[off : off + size]
        small = view.lookup('/.hangarfs/commit.json')
        assert small is not None and ahead.read(small, 100, 0) == view.read(small, 100, 0)
    finally:
        ahead.close()
