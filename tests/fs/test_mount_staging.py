"""The writable staging mount through a real FUSE mount (issue 5)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository, WriterLockHeld
from tests.helpers import npy_bytes

from .conftest import Mounts, is_mounted, make_repo, run_cli, wait_gone

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(180)]


def image(i: int) -> np.ndarray:
    return np.full((28, 28), i % 256, np.uint8)


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        images = co.add_ndarray_column('images', shape=(28, 28), dtype=np.uint8)
        images.update({i: image(i) for i in range(10)})
        co.add_str_column('captions')[0] = 'zero'
        co.commit('base')
    return repo


def staged_images(repo: Repository) -> dict[object, int]:
    """What the staging area holds now, read through the Python API without taking the writer lock."""
    from hangarfs.engine.staging import SET, StagingArea

    staging = StagingArea(repo.store)
    return {k: int(v[:1] == SET) for k, v in staging.iter_prefix(b'images\x00')}


def write_file(path: Path, data: bytes) -> OSError | None:
    """Write a whole file through the mount; return the error close() (or open) raised, if any."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as err:
        return err
    try:
        os.write(fd, data)
    finally:
        try:
            os.close(fd)
        except OSError as err:
            return err
    return None


def daemon_log(mp: Path) -> str:
    return Path(json.loads((mp / '.hangarfs' / 'mount.json').read_text())['log']).read_text()


def test_cp_rm_mkdir_metadata_np_save_and_commit_through_the_daemon(
    repo: Repository, mounts: Mounts, tmp_path: Path
) -> None:
    src = tmp_path / 'src'
    src.mkdir()
    for i in range(5, 15):
        np.save(src / f'{i}.npy', image(100 + i))
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    assert json.loads((mp / '.hangarfs' / 'mount.json').read_text())['mode'] == 'staging'
    subprocess.run(f'cp {src}/*.npy {mp}/images/', shell=True, check=True)
    os.unlink(mp / 'images' / '3.npy')
    os.mkdir(mp / 'masks')
    np.save(src / 'm0.npy', np.ones((4, 4), np.float32))
    subprocess.run(['cp', str(src / 'm0.npy'), str(mp / 'masks' / '0.npy')], check=True)
    (mp / '.hangarfs' / 'metadata' / 'note').write_text('labels relabelled by hand\n')
    np.save(mp / 'images' / '77.npy', image(77))  # python writing straight into the mount
    assert np.array_equal(np.load(mp / 'images' / '12.npy'), image(112))  # reads show the staged state
    assert not (mp / 'images' / '3.npy').exists()
    status = run_cli('-C', repo.path, 'status').stdout
    assert 'staging mount at' in status and 'column images: 6 added, 1 deleted, 5 mutated' in status
    digest = run_cli('-C', repo.path, 'commit', '-m', 'fix 40 labels').stdout.strip()
    assert len(digest) == 64
    commit = json.loads((mp / '.hangarfs' / 'commit.json').read_text())
    assert commit['commit'] == digest and commit['message'] == 'fix 40 labels'
    with closing(repo.checkout(commit=digest)) as co:  # a reader while the mount holds the writer
        assert np.array_equal(co['images', 12], image(112)) and 3 not in co['images']
        assert np.array_equal(co['images', 77], image(77))
        assert co['masks'].dtype == np.float32 and co['masks'].shape == (4, 4)
        assert co.metadata['note'] == 'labels relabelled by hand\n'
    assert run_cli('-C', repo.path, 'status').stdout.count('Nothing staged') == 1


def test_overwrite_truncate_in_place_rename_and_rsync(
    repo: Repository, mounts: Mounts, tmp_path: Path
) -> None:
    mp = mounts.mount(repo.path, '--write')
    target = mp / 'images' / '1.npy'
    raw = bytearray(npy_bytes(image(1)))
    with open(target, 'r+b') as fh:  # change bytes in place, no truncation
        fh.seek(len(raw) - 1)
        fh.write(b'\xff')
    raw[-1] = 0xFF
    assert target.read_bytes() == bytes(raw)
    with open(target, 'r+b') as fh:  # shrink then rewrite through ftruncate
        fh.truncate(10)
        fh.seek(0)
        fh.write(npy_bytes(image(201)))
    assert np.array_equal(np.load(target), image(201))
    os.rename(mp / 'images' / '2.npy', mp / 'images' / 'two.npy')
    assert not (mp / 'images' / '2.npy').exists()
    assert np.array_equal(np.load(mp / 'images' / 'two.npy'), image(2))
    os.replace(mp / 'images' / 'two.npy', mp / 'images' / '4.npy')  # rename onto an existing sample
    assert np.array_equal(np.load(mp / 'images' / '4.npy'), image(2))
    more = tmp_path / 'more'
    more.mkdir()
    for i in range(30, 40):
        np.save(more / f'{i}.npy', image(i))
    subprocess.run(['rsync', '-a', f'{more}/', f'{mp}/images/'], check=True, capture_output=True)
    names = os.listdir(mp / 'images')
    assert not [n for n in names if n.startswith('.') and n != '.schema.json']  # no temp files left
    for i in range(30, 40):
        assert np.array_equal(np.load(mp / 'images' / f'{i}.npy'), image(i))
    run_cli('-C', repo.path, 'commit', '-m', 'edits')
    with closing(repo.checkout()) as co:
        assert (
            np.array_equal(co['images', 1], image(201)) and 'two' not in co['images'] and 39 in co['images']
        )


def test_schema_json_sets_a_new_columns_schema(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write')
    os.mkdir(mp / 'vols')
    spec = {'kind': 'ndarray', 'dtype': 'float32', 'shape': [8, 8], 'variable_shape': True, 'backend': 'hdf5'}
    (mp / 'vols' / '.schema.json').write_text(json.dumps(spec))
    np.save(mp / 'vols' / 'small.npy', np.ones((2, 3), np.float32))
    err = write_file(mp / 'vols' / 'big.npy', npy_bytes(np.ones((9, 9), np.float32)))
    assert err is not None and err.errno == errno.EINVAL
    schema = json.loads((mp / 'vols' / '.schema.json').read_text())
    assert schema['variable_shape'] is True and schema['shape'] == [8, 8] and schema['backend'] == 'hdf5'
    assert schema['samples'] == 1


BAD_FILES = {
    'random-bytes': (b'\x00\x01garbage' * 10, 'magic'),
    'truncated-header': (npy_bytes(image(1))[:30], 'truncated or malformed'),
    'truncated-body': (npy_bytes(image(1))[:-10], 'truncated'),
    'wrong-dtype': (npy_bytes(np.zeros((28, 28), np.float32)), 'expected dtype uint8, got float32'),
    'wrong-shape': (npy_bytes(np.zeros((27, 28), np.uint8)), 'expected shape (28, 28), got (27, 28)'),
    'object-dtype': (npy_bytes(np.array([None, 1], dtype=object), allow_pickle=True), 'dtype object'),
    'structured-dtype': (npy_bytes(np.zeros(3, dtype=[('a', 'u1'), ('b', 'u1')])), 'structured dtype'),
}


@pytest.mark.parametrize('case', sorted(BAD_FILES))
def test_bad_files_fail_at_close_log_the_reason_and_stage_nothing(
    case: str, repo: Repository, mounts: Mounts
) -> None:
    mp = mounts.mount(repo.path, '--write')
    assert write_file(mp / 'images' / '50.npy', npy_bytes(image(50))) is None  # staged before
    data, reason = BAD_FILES[case]
    before = staged_images(repo)
    err = write_file(mp / 'images' / '3.npy', data)
    assert err is not None and err.errno in (errno.EINVAL, errno.EIO)
    assert staged_images(repo) == before
    assert np.array_equal(np.load(mp / 'images' / '3.npy'), image(3))  # the old sample stays
    assert np.array_equal(np.load(mp / 'images' / '50.npy'), image(50))
    log = daemon_log(mp)
    assert '/images/3.npy: not staged:' in log and reason in log


def test_fortran_ordered_arrays_are_accepted_and_stored_c_ordered(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write')
    arr = np.asfortranarray(np.arange(784, dtype=np.uint8).reshape(28, 28))
    assert write_file(mp / 'images' / '5.npy', npy_bytes(arr)) is None
    assert (mp / 'images' / '5.npy').read_bytes() == npy_bytes(np.ascontiguousarray(arr))


@pytest.mark.parametrize(
    ('relpath', 'data'),
    [
        ('images/a b.npy', npy_bytes(image(1))),  # not a valid key
        ('images/x.npz', npy_bytes(image(1))),  # not a sample file (.npz)
        ('loose.npy', npy_bytes(image(1))),  # a file in the mount root
        ('images/7.txt', b'a caption'),  # a .txt into an ndarray column
        ('captions/1.npy', npy_bytes(image(1))),  # a .npy into a str column
    ],
)
def test_bad_names_fail_at_create(relpath: str, data: bytes, repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write')
    before = staged_images(repo)
    err = write_file(mp / relpath, data)
    assert err is not None and err.errno == errno.EINVAL
    assert not (mp / relpath).exists()
    assert staged_images(repo) == before


@pytest.mark.parametrize('name', ['.hidden', 'a b', 'x' * 256])
def test_mkdir_of_an_invalid_column_name_fails(name: str, repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write')
    with pytest.raises(OSError) as info:
        os.mkdir(mp / name)
    assert info.value.errno in (errno.EINVAL, errno.ENAMETOOLONG)


def test_str_and_bytes_columns_and_nested_columns(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write')
    (mp / 'captions' / '5.txt').write_text('ünïcödé')
    err = write_file(mp / 'captions' / '6.txt', b'\xff\xfe not utf-8')
    assert err is not None and err.errno == errno.EINVAL
    os.mkdir(mp / 'blobs')
    (mp / 'blobs' / 'x.bin').write_bytes(b'\x00\x01')
    os.mkdir(mp / 'scans')
    os.mkdir(mp / 'scans' / 'patient1')
    np.save(mp / 'scans' / 'patient1' / 'axial.npy', np.ones((3, 3), np.int16))
    np.save(mp / 'scans' / 'patient1' / 'coronal.npy', np.zeros((3, 3), np.int16))
    assert sorted(os.listdir(mp / 'scans' / 'patient1')) == ['axial.npy', 'coronal.npy']
    digest = run_cli('-C', repo.path, 'commit', '-m', 'kinds').stdout.strip()
    with closing(repo.checkout(commit=digest)) as co:
        assert co['captions', 5] == 'ünïcödé' and 6 not in co['captions']
        assert co['blobs', 'x'] == b'\x00\x01'
        assert co['scans'].contains_subsamples and np.array_equal(
            co['scans']['patient1', 'axial'], np.ones((3, 3))
        )


def test_a_second_writer_gets_a_clear_error_naming_the_mount(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write')
    with pytest.raises(WriterLockHeld, match=str(mp)):
        repo.checkout(write=True)
    other = mp.parent / 'other'
    other.mkdir()
    proc = run_cli('mount', repo.path, str(other), '--write', check=False)
    assert proc.returncode != 0 and str(mp) in proc.stderr and proc.stderr.count('\n') == 1
    assert not is_mounted(other)
    with closing(repo.checkout()) as co:  # readers are fine
        assert np.array_equal(co['images', 0], image(0))
    assert 'images' in run_cli('-C', repo.path, 'summary').stdout


def test_kill_9_loses_nothing_closed_and_frees_the_lock(
    repo: Repository, mounts: Mounts, tmp_path: Path
) -> None:
    mp = mounts.mount(repo.path, '--write', name='stage')
    for i in range(20, 60):
        assert write_file(mp / 'images' / f'{i}.npy', npy_bytes(image(i))) is None
    big = np.random.default_rng(0).integers(0, 255, (512, 1024, 28), dtype=np.uint8)  # 14 MB: a sealed file
    os.mkdir(mp / 'big')
    np.save(mp / 'big' / '0.npy', big)
    pid = json.loads((mp / '.hangarfs' / 'mount.json').read_text())['pid']
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid, 10)
    run_cli('umount', str(mp))  # the dead mount's entry goes, as after any crashed FUSE daemon
    assert not repo.writer_lock_held
    mp = mounts.mount(repo.path, '--write', name='stage-again')
    for i in range(20, 60):
        assert np.array_equal(np.load(mp / 'images' / f'{i}.npy'), image(i))
    assert np.array_equal(np.load(mp / 'big' / '0.npy'), big)
    digest = run_cli('-C', repo.path, 'commit', '-m', 'after a crash').stdout.strip()
    run_cli('umount', str(mp))
    with closing(repo.checkout(commit=digest)) as co:
        assert len(co['images']) == 50
    repo.verify_repo_integrity()


def test_umount_keeps_staged_work_and_fsync_succeeds(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write', name='s1')
    fd = os.open(mp / 'images' / '90.npy', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, npy_bytes(image(90)))
    os.fsync(fd)  # stages and makes durable before close
    os.close(fd)
    run_cli('umount', str(mp))
    assert staged_images(repo).get(b'\x00\x01\x5a') == 1
    with closing(repo.checkout(write=True)) as co:
        assert np.array_equal(co['images', 90], image(90))
        co.commit('after umount')
