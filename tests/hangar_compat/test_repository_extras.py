"""Item 10 of issue 15 (the repository and flag parts): boolean-only flags, ``verify_repo_integrity()``
returning True, ``size_nbytes`` / ``size_human`` / ``version``, and ``force_release_writer_lock()``
(Hangar's tutorial: "If a non-handled termination method does occur, the
force_release_writer_lock() method must be called manually")."""

from __future__ import annotations

import os
import re
from contextlib import closing
from pathlib import Path

import h5py
import numpy as np
import pytest

import hangarfs
from hangarfs import Repository
from hangarfs.errors import IntegrityError, WriterLockHeld
from tests.helpers import Children, flip_byte


@pytest.mark.parametrize('flag', ['False', 'True', 0, 1, None])
def test_column_flags_take_only_booleans(repo: Repository, flag: object) -> None:
    with closing(repo.checkout(write=True)) as co:
        with pytest.raises(ValueError, match='contains_subsamples takes True or False'):
            co.add_ndarray_column('a', prototype=np.zeros(3), contains_subsamples=flag)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match='contains_subsamples takes True or False'):
            co.add_str_column('b', contains_subsamples=flag)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match='contains_subsamples takes True or False'):
            co.add_bytes_column('c', contains_subsamples=flag)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match='variable_shape takes True or False'):
            co.add_ndarray_column('d', prototype=np.zeros(3), variable_shape=flag)  # type: ignore[arg-type]
        assert len(co.columns) == 0
        nested = co.add_ndarray_column('e', prototype=np.zeros(3), contains_subsamples=np.bool_(True))
        assert nested.contains_subsamples is True


def test_prototype_or_shape_and_dtype_not_both(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co, pytest.raises(ValueError, match='not both'):
        co.add_ndarray_column('a', shape=(3,), prototype=np.zeros(3))


def test_other_flags(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')['k'] = 'v'
        co.commit('c')
    repo.create_branch('dev')
    with pytest.raises(ValueError, match='force_delete takes True or False'):
        repo.remove_branch('dev', force_delete='yes')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='remove_old takes True or False'):
        repo.init(user_name='A', user_email='a@b.c', remove_old='yes')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='return_contents'):
        repo.log(return_contents='yes')  # type: ignore[arg-type]
    assert 'dev' in repo.list_branches()


def test_verify_repo_integrity_returns_true_or_raises(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        noise = np.random.default_rng(0).random((100, 4096), dtype=np.float32)  # 1.6 MB: a data file
        co.add_ndarray_column('x', prototype=noise[0], backend='hdf5').update_batch(list(range(100)), noise)
        co.commit('c')
    assert repo.verify_repo_integrity() is True
    report = repo.verify_report()
    assert report.ok and report.commits == 1 and report.samples == 100
    (data_file,) = (Path(repo.path) / '.hangarfs' / 'data' / '00').glob('*.h5')
    with h5py.File(data_file, 'r', locking=False) as f:
        chunk = f['heap'].id.get_chunk_info(0)
    flip_byte(data_file, chunk.byte_offset + chunk.size // 2)  # damage stored sample bytes
    with pytest.raises(IntegrityError) as info:
        Repository(repo.path).verify_repo_integrity()  # a fresh one: no decompressed chunk cached
    assert info.value.report.problems


def test_size_and_version(repo: Repository) -> None:
    before = repo.size_nbytes
    store = Path(repo.path) / '.hangarfs'
    assert before == sum(p.stat().st_size for p in store.rglob('*') if p.is_file() and not p.is_symlink())
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('x', prototype=np.zeros(100_000, np.uint8)).update(
            {i: np.random.default_rng(i).integers(0, 255, 100_000, dtype=np.uint8) for i in range(20)}
        )
        co.commit('2 MB of noise')
    assert isinstance(repo.size_nbytes, int) and repo.size_nbytes > before + 2_000_000
    human = repo.size_human
    assert re.fullmatch(r'\d+\.\d\d (B|kB|MB|GB|TB)', human), human
    assert human.endswith(' MB') and 1.9 < float(human.split()[0]) < 20
    assert repo.version == hangarfs.__version__


def test_force_release_when_no_writer_is_alive(repo: Repository, children: Children) -> None:
    assert repo.force_release_writer_lock() is True  # nobody holds it
    holder = children.start(
        """
        import sys
        from hangarfs import Repository
        co = Repository(sys.argv[1]).checkout(write=True)
        print('holding', flush=True)
        sys.stdin.readline()
        """,
        repo.path,
    )
    children.expect_line(holder, 'holding')
    with pytest.raises(WriterLockHeld, match=rf'cannot force-release .* pid {holder.pid}.*holder is alive'):
        repo.force_release_writer_lock()
    assert repo.writer_lock_held
    children.kill(holder)  # a writer that dies without closing: Hangar's case for this method
    assert repo.force_release_writer_lock() is True
    with closing(repo.checkout(write=True)) as co:
        assert co.iswriteable


def test_force_release_never_breaks_a_live_writer_of_this_process(repo: Repository) -> None:
    co = repo.checkout(write=True)
    with pytest.raises(PermissionError, match=f'pid {os.getpid()}.*this very process'):
        repo.force_release_writer_lock()
    assert repo.writer_lock_held and co.iswriteable
    co.close()
    assert repo.force_release_writer_lock() is True
