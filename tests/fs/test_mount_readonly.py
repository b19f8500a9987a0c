"""The read-only mount through a real FUSE mount, exercised with real tools (issue 4)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import threading
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.fs.names import key_to_name
from tests.helpers import npy_bytes, poll_until, wait_until

from .conftest import ALL_DTYPES, Mounts, is_mounted, make_repo, run_cli, wait_gone

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(120)]


def head_commit(repo: Repository) -> str:
    return repo.store.refs.branch_head('master') or ''


def test_layout_and_every_file_is_what_numpy_save_writes(
    rich_repo: tuple[Repository, dict], mounts: Mounts
) -> None:
    repo, expected = rich_repo
    mp = mounts.mount(repo.path, '--ref', head_commit(repo)[:10])
    top = sorted(os.listdir(mp))
    assert top == sorted(['.hangarfs', *[k for k in expected]])
    for dt in ALL_DTYPES:
        for key, arr in expected[f'dt_{dt}'].items():  # type: ignore[attr-defined]
            data = (mp / f'dt_{dt}' / f'{key}.npy').read_bytes()
            assert data == npy_bytes(arr), dt
            assert np.array_equal(np.load(mp / f'dt_{dt}' / f'{key}.npy'), arr)
    for key, arr in expected['images'].items():  # type: ignore[attr-defined]
        assert (mp / 'images' / (key_to_name(key) + '.npy')).read_bytes() == npy_bytes(arr)
    assert (mp / 'images' / '@5.npy').read_bytes() == npy_bytes(np.zeros((28, 28), np.uint8))  # str key '5'
    assert (mp / 'images' / '5.npy').read_bytes() == npy_bytes(expected['images'][5])  # type: ignore[index]
    assert (mp / 'captions' / '1.txt').read_text(encoding='utf-8') == 'ünïcödé ✓'
    assert (mp / 'captions' / 'blank.txt').read_bytes() == b''
    assert (mp / 'blobs' / '0.bin').read_bytes() == b'\x00\x01\x02'
    assert (mp / 'blobs' / 'zero.bin').stat().st_size == 0
    assert sorted(os.listdir(mp / 'scans')) == ['.schema.json', '7', 'patient1']
    assert sorted(os.listdir(mp / 'scans' / 'patient1')) == ['axial.npy', 'coronal.npy']
    sub = expected['scans']['patient1']['axial']  # type: ignore[index]
    assert (mp / 'scans' / 'patient1' / 'axial.npy').read_bytes() == npy_bytes(sub)
    assert os.listdir(mp / 'nothing') == ['.schema.json']
    empty = np.load(mp / 'volumes' / 'empty.npy')
    assert empty.shape == (0, 4, 4)
    schema = json.loads((mp / 'images' / '.schema.json').read_text())
    assert schema['dtype'] == 'uint8' and schema['shape'] == [28, 28] and schema['samples'] == 52
    commit = json.loads((mp / '.hangarfs' / 'commit.json').read_text())
    assert commit['commit'] == head_commit(repo) and commit['message'] == 'rich repository'
    assert (mp / '.hangarfs' / 'metadata' / 'source').read_text() == 'unit test'
    assert sorted(os.listdir(mp / '.hangarfs' / 'metadata')) == ['note', 'source']


def test_stat_sizes_without_reading_and_tools(
    rich_repo: tuple[Repository, dict], mounts: Mounts, tmp_path: Path
) -> None:
    repo, expected = rich_repo
    mp = mounts.mount(repo.path, '--ref', 'master')
    big = expected['volumes']['big']  # type: ignore[index]
    st = os.stat(mp / 'volumes' / 'big.npy')
    assert st.st_size == len(npy_bytes(big))
    out = subprocess.run(
        ['stat', '-c', '%s %F', str(mp / 'images' / '0.npy')], capture_output=True, text=True
    )
    assert out.stdout.split()[0] == str(len(npy_bytes(expected['images'][0])))  # type: ignore[index]
    found = subprocess.run(['find', str(mp), '-name', '*.npy'], capture_output=True, text=True, check=True)
    npys = found.stdout.split()
    n_expected = sum(len(v) for k, v in expected.items() if k not in ('captions', 'blobs', 'scans'))  # type: ignore[arg-type]
    assert len(npys) == n_expected + 3  # + the three subsamples of scans
    du = subprocess.run(['du', '-sb', str(mp)], capture_output=True, text=True, check=True)
    assert int(du.stdout.split()[0]) >= big.nbytes
    dest = tmp_path / 'copy'
    subprocess.run(['cp', '-r', str(mp / 'images'), str(dest)], check=True)
    assert sorted(os.listdir(dest)) == sorted(os.listdir(mp / 'images'))
    for name in os.listdir(dest):
        assert (dest / name).read_bytes() == (mp / 'images' / name).read_bytes()


def test_big_compressed_sample_reads_whole_mmap_and_ranges(
    rich_repo: tuple[Repository, dict], mounts: Mounts
) -> None:
    repo, expected = rich_repo
    mp = mounts.mount(repo.path, '--ref', 'master')
    big = expected['volumes']['big']  # type: ignore[index]
    path = mp / 'volumes' / 'big.npy'
    assert np.array_equal(np.load(path), big)
    mm = np.load(path, mmap_mode='r')
    assert mm.shape == big.shape and float(mm[123].sum()) == float(big[123].sum())
    raw = npy_bytes(big)
    with open(path, 'rb') as fh:
        for offset in (0, 100, len(raw) // 2, len(raw) - 7):
            fh.seek(offset)
            assert fh.read(4096) == raw[offset : offset + 4096]


def test_diff_r_of_two_commits(tmp_path: Path, mounts: Mounts) -> None:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', shape=(4,), dtype=np.int64)
        col.update({i: np.full(4, i) for i in range(20)})
        c1 = co.commit('one')
        col[3] = np.full(4, -3)
        del col[4]
        col[99] = np.zeros(4, np.int64)
        c2 = co.commit('two')
    a = mounts.mount(repo.path, '--ref', c1)
    b = mounts.mount(repo.path, '--ref', c2)
    out = subprocess.run(['diff', '-r', '-q', str(a / 'x'), str(b / 'x')], capture_output=True, text=True)
    lines = sorted(out.stdout.splitlines())
    assert out.returncode == 1
    assert any('3.npy' in ln and 'differ' in ln for ln in lines)
    assert any(ln.startswith(f'Only in {a / "x"}: 4.npy') for ln in lines)
    assert any(ln.startswith(f'Only in {b / "x"}: 99.npy') for ln in lines)
    assert len(lines) == 3  # one delete and one add: the .schema.json sample count is unchanged


@pytest.mark.parametrize('kind', ['branch', 'commit'])
def test_every_write_operation_fails_with_erofs(
    kind: str, rich_repo: tuple[Repository, dict], mounts: Mounts
) -> None:
    repo, _ = rich_repo
    mp = mounts.mount(repo.path, '--ref', 'master' if kind == 'branch' else head_commit(repo))
    target = mp / 'images' / '0.npy'
    before = target.read_bytes()
    attempts = {
        'create': lambda: os.open(mp / 'images' / 'new.npy', os.O_WRONLY | os.O_CREAT, 0o644),
        'write': lambda: os.open(target, os.O_RDWR),
        'append': lambda: os.open(target, os.O_WRONLY | os.O_APPEND),
        'truncate': lambda: os.truncate(target, 0),
        'unlink': lambda: os.unlink(target),
        'rename': lambda: os.rename(target, mp / 'images' / '1000.npy'),
        'mkdir': lambda: os.mkdir(mp / 'newcol'),
        'rmdir': lambda: os.rmdir(mp / 'nothing'),
        'chmod': lambda: os.chmod(target, 0o777),
        'chown': lambda: os.chown(target, 1, 1),
        'utime': lambda: os.utime(target, (1, 1)),
        'symlink': lambda: os.symlink('0.npy', mp / 'images' / 'link.npy'),
        'link': lambda: os.link(target, mp / 'images' / 'hard.npy'),
        'setxattr': lambda: os.setxattr(target, 'user.x', b'1'),
    }
    for what, attempt in attempts.items():
        with pytest.raises(OSError) as info:
            attempt()
        assert info.value.errno == errno.EROFS, what
    assert target.read_bytes() == before


@pytest.mark.parametrize(
    'case', ['unknown-ref', 'not-a-repo', 'missing-mountpoint', 'non-empty', 'in-use', 'ambiguous']
)
def test_bad_mounts_fail_fast_with_one_line(
    case: str, rich_repo: tuple[Repository, dict], mounts: Mounts, tmp_path: Path
) -> None:
    repo, _ = rich_repo
    mp = tmp_path / 'bad-mp'
    mp.mkdir()
    args = [repo.path, str(mp), '--ref', 'master']
    if case == 'unknown-ref':
        args[3] = 'no-such-branch'
    elif case == 'not-a-repo':
        (tmp_path / 'plain').mkdir()
        args[0] = str(tmp_path / 'plain')
    elif case == 'missing-mountpoint':
        args[1] = str(tmp_path / 'absent')
    elif case == 'non-empty':
        (mp / 'file').write_text('x')
    elif case == 'in-use':
        args[1] = str(mounts.mount(repo.path, '--ref', 'master'))
    elif case == 'ambiguous':
        args[3] = '0'  # too short to be a prefix
    started = time.monotonic()
    proc = run_cli('mount', *args, check=False)
    assert proc.returncode != 0
    assert proc.stderr.count('\n') == 1 and proc.stderr.startswith('hangarfs: error: ')
    assert time.monotonic() - started < 10
    if case != 'in-use':
        assert not is_mounted(Path(args[1]))


def test_sigterm_and_umount_leave_no_stale_mount(rich_repo: tuple[Repository, dict], mounts: Mounts) -> None:
    repo, _ = rich_repo
    mp1 = mounts.mount(repo.path, '--ref', 'master')
    mp2 = mounts.mount(repo.path, '--ref', head_commit(repo))  # two mounts of one repository at once
    pid1 = json.loads((mp1 / '.hangarfs' / 'mount.json').read_text())['pid']
    pid2 = json.loads((mp2 / '.hangarfs' / 'mount.json').read_text())['pid']
    assert (mp1 / 'images' / '0.npy').read_bytes() == (mp2 / 'images' / '0.npy').read_bytes()
    listed = json.loads(run_cli('mounts', '--json').stdout)
    mine = {m['mountpoint']: m for m in listed if m['mountpoint'] in (str(mp1), str(mp2))}
    assert mine[str(mp1)]['ref'] == 'master' and mine[str(mp2)]['commit'] == head_commit(repo)
    assert mine[str(mp1)]['pid'] == pid1 and Path(mine[str(mp1)]['log']).is_file()
    os.kill(pid1, signal.SIGTERM)
    assert wait_gone(pid1, 10)
    assert not is_mounted(mp1)
    run_cli('umount', str(mp2))
    assert wait_gone(pid2, 10)
    assert not is_mounted(mp2)
    log = Path(mine[str(mp1)]['log']).read_text()
    assert 'mounted' in log and 'unmounted' in log


def test_branch_mount_follows_new_commits_and_old_handles_keep_their_version(
    tmp_path: Path, mounts: Mounts
) -> None:
    repo = make_repo(tmp_path / 'repo')
    old_x = np.arange(300_000, dtype=np.float64)  # 2.4 MB: many pages the old handle has not read yet
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', shape=(400_000,), dtype=np.float64, variable_shape=True)
        col.update({i: old_x + i for i in range(3)})
        co.commit('one')
    mp = mounts.mount(repo.path, '--ref', 'master')
    path = mp / 'x' / '2.npy'
    assert np.array_equal(np.load(path), old_x + 2)
    fd = os.open(path, os.O_RDONLY)  # unbuffered: every read below reaches the kernel
    mm = np.load(path, mmap_mode='r')  # an mmap holds the old version too
    try:
        first = os.pread(fd, 4096, 0)
        new_x = -np.arange(100_000, dtype=np.float64)  # smaller: the old handle must keep its size as well
        with closing(repo.checkout(write=True)) as co:
            co['x'][2] = new_x
            co['x'][77] = np.zeros(10)
            co.commit('two')
        moved = time.monotonic()
        poll_until(lambda: np.load(path).shape == new_x.shape, timeout=2.0, interval=0.05)
        seen = np.load(path)
        assert seen is not None and np.array_equal(seen, new_x)
        assert time.monotonic() - moved <= 1.2, 'the new commit took longer than 1 s to show'
        assert '77.npy' in os.listdir(mp / 'x')
        old_bytes = npy_bytes(old_x + 2)
        assert os.fstat(fd).st_size == len(old_bytes)
        tail = b''.join(os.pread(fd, 1 << 20, off) for off in range(4096, len(old_bytes), 1 << 20))
        assert first + tail == old_bytes
        assert float(mm[-1]) == float(old_x[-1] + 2)
    finally:
        os.close(fd)
        del mm
    assert np.array_equal(np.load(path), new_x)
    commit = json.loads((mp / '.hangarfs' / 'commit.json').read_text())
    assert commit['message'] == 'two'


def test_listing_is_never_mixed_across_commits(tmp_path: Path, mounts: Mounts) -> None:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('x', shape=(1,), dtype=np.int64)
        col.update({i: np.array([i]) for i in range(3000)})
        co.commit('evens and odds')
    mp = mounts.mount(repo.path, '--ref', 'master')
    stop = threading.Event()
    errors: list[str] = []
    listings = [0]  # how many listings the main thread has taken

    def two_more_listings() -> None:
        wanted = listings[0] + 2
        wait_until(lambda: listings[0] >= wanted or stop.is_set(), timeout=60, what='two more listings')

    def flip() -> None:
        """Six commits, each after the main thread has listed the directory twice since the last."""
        try:
            for n in range(6):
                with closing(repo.checkout(write=True)) as co:
                    c = co['x']
                    if n % 2 == 0:
                        c.update({i: np.array([i]) for i in range(3000, 6000)})
                    else:
                        for i in range(3000, 6000):
                            del c[i]
                    co.commit(f'flip {n}')
                two_more_listings()
        except BaseException as err:
            errors.append(f'the committing thread failed: {err!r}')
            raise

    t = threading.Thread(target=flip)
    t.start()
    try:
        while t.is_alive():
            names = os.listdir(mp / 'x')
            count = len(names) - 1
            if count not in (3000, 6000):
                errors.append(f'listing of {count} samples mixes two commits')
            listings[0] += 1
    finally:
        stop.set()
        t.join()
    assert not errors


def test_all_refs_mount(tmp_path: Path, mounts: Mounts) -> None:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')[0] = 'first'
        c1 = co.commit('one')
    repo.create_branch('dev')
    with closing(repo.checkout(write=True, branch='dev')) as co:
        co['s'][0] = 'second'
        c2 = co.commit('two')
    mp = mounts.mount(repo.path, '--all-refs')
    assert sorted(os.listdir(mp)) == ['.hangarfs', 'branches', 'commits', 'tags']
    assert sorted(os.listdir(mp / 'branches')) == ['dev', 'master']
    assert sorted(os.listdir(mp / 'commits')) == sorted([c1, c2])
    assert (mp / 'branches' / 'master' / 's' / '0.txt').read_text() == 'first'
    assert (mp / 'branches' / 'dev' / 's' / '0.txt').read_text() == 'second'
    assert (mp / 'commits' / c1 / 's' / '0.txt').read_text() == 'first'
    assert not (mp / 'commits' / ('0' * 64)).exists()


def test_unreadable_repository_gives_eio_and_a_log_line_not_a_crash(tmp_path: Path, mounts: Mounts) -> None:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('v', shape=(4096,), dtype=np.float32, backend='hdf5')
        col.update({i: np.full(4096, float(i), np.float32) for i in range(400)})  # 6.5 MB: one sealed file
        co.commit('one')
    mp = mounts.mount(repo.path, '--ref', 'master')
    info = json.loads((mp / '.hangarfs' / 'mount.json').read_text())
    for f in (Path(repo.path) / '.hangarfs' / 'data' / '00').glob('*.h5'):
        f.unlink()
    with pytest.raises(OSError) as err:
        (mp / 'v' / '3.npy').read_bytes()
    assert err.value.errno == errno.EIO
    assert (mp / '.hangarfs' / 'commit.json').read_text()  # the daemon is still serving
    assert os.path.exists(f'/proc/{info["pid"]}')
    assert 'missing' in Path(info['log']).read_text()
