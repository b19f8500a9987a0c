"""Fixtures for tests that mount real FUSE filesystems.

Every mount goes under the test's tmp_path, is unmounted in teardown even when the test fails
(``fusermount3 -u``, then ``-uz``), and its daemon is waited for; pytest-timeout bounds every test so
that a hung mount cannot hang the run. ``no_leaked_mounts`` fails a test that leaves a mount behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.engine.samples import ALLOWED_DTYPES
from tests.helpers import new_repository, poll_until, run_hangarfs

pytestmark = pytest.mark.fuse


def fuse_available() -> bool:
    return os.path.exists('/dev/fuse') and shutil.which('fusermount3') is not None


def run_cli(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = run_hangarfs(*args, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'hangarfs {" ".join(args)} failed ({proc.returncode}): {proc.stderr}{proc.stdout}'
        )
    return proc


def is_mounted(path: Path) -> bool:
    target = str(path)
    with open('/proc/self/mountinfo') as fh:
        return any(line.split(' ')[4] == target for line in fh)


def force_unmount(path: Path) -> None:
    if not is_mounted(path):
        return
    subprocess.run(['fusermount3', '-u', str(path)], capture_output=True, timeout=30)
    if is_mounted(path):
        subprocess.run(['fusermount3', '-uz', str(path)], capture_output=True, timeout=30)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    return poll_until(lambda: not process_exists(pid), timeout=timeout, interval=0.05)


class Mounts:
    """Mounts made by one test; all unmounted at teardown."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.points: list[Path] = []
        self.pids: list[int] = []

    def mount(self, repo: str | Path, *args: str, name: str | None = None) -> Path:
        mp = self.base / (name or f'mnt{len(self.points)}')
        mp.mkdir(parents=True, exist_ok=True)
        self.points.append(mp)
        run_cli('mount', str(repo), str(mp), *args)
        assert is_mounted(mp), f'{mp} is not mounted after hangarfs mount'
        info = json.loads((mp / '.hangarfs' / 'mount.json').read_text())
        self.pids.append(int(info['pid']))
        return mp

    def cleanup(self) -> None:
        for mp in self.points:
            force_unmount(mp)
        for pid in self.pids:
            if not wait_gone(pid, 10):
                os.kill(pid, 9)


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    if not fuse_available():
        pytest.fail('FUSE is not available (/dev/fuse or fusermount3 missing); scripts/test installs it')
    m = Mounts(tmp_path / 'mnt')
    try:
        yield m
    finally:
        m.cleanup()
    leaked = [str(p) for p in m.points if is_mounted(p)]
    assert not leaked, f'mounts left behind: {leaked}'


def make_repo(path: Path) -> Repository:
    return new_repository(path, user_name='Tester', user_email='tester@example.org')


ALL_DTYPES = [dt.name for dt in ALLOWED_DTYPES]


def sample_array(dtype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == 'bool':
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.startswith('float'):
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


@pytest.fixture
def rich_repo(tmp_path: Path) -> tuple[Repository, dict[str, object]]:
    """A repository with every column kind and layout, empty columns, zero-size and big samples."""
    repo = make_repo(tmp_path / 'repo')
    expected: dict[str, object] = {}
    with closing(repo.checkout(write=True)) as co:
        for i, dt in enumerate(ALL_DTYPES):
            col = co.add_ndarray_column(f'dt_{dt}', shape=(3, 5), dtype=dt)
            arrays = {k: sample_array(dt, (3, 5), 100 * i + k) for k in range(3)}
            col.update(arrays)
            expected[f'dt_{dt}'] = arrays
        images = co.add_ndarray_column('images', shape=(28, 28), dtype=np.uint8)
        imgs = {k: sample_array('uint8', (28, 28), k) for k in range(50)}
        imgs['cat.7'] = sample_array('uint8', (28, 28), 999)
        imgs['5'] = np.zeros((28, 28), np.uint8)
        images.update(imgs)
        expected['images'] = imgs
        vols = co.add_ndarray_column(
            'volumes',
            shape=(256, 256, 64),
            dtype=np.float32,
            variable_shape=True,
            backend='hdf5',
            backend_options={'complib': 'blosc:zstd', 'complevel': 3},
        )
        big = np.cumsum(sample_array('float32', (200, 256, 64), 7), axis=0).astype(np.float32)
        vols['big'] = big
        vols['empty'] = np.zeros((0, 4, 4), np.float32)
        vols['tiny'] = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
        expected['volumes'] = {'big': big, 'empty': vols['empty'], 'tiny': vols['tiny']}
        caps = co.add_str_column('captions')
        caps.update({0: 'a cat', 1: 'ünïcödé ✓', 'long': 'x' * 10000, 'blank': ''})
        expected['captions'] = {0: 'a cat', 1: 'ünïcödé ✓', 'long': 'x' * 10000, 'blank': ''}
        blobs = co.add_bytes_column('blobs')
        blobs.update({0: b'\x00\x01\x02', 'zero': b''})
        expected['blobs'] = {0: b'\x00\x01\x02', 'zero': b''}
        scans = co.add_ndarray_column('scans', shape=(4, 4), dtype=np.uint16, contains_subsamples=True)
        scans['patient1'] = {
            'axial': sample_array('uint16', (4, 4), 1),
            'coronal': sample_array('uint16', (4, 4), 2),
        }
        scans[7] = {0: sample_array('uint16', (4, 4), 3)}
        expected['scans'] = {'patient1': dict(scans['patient1'].items()), 7: dict(scans[7].items())}
        co.add_ndarray_column('nothing', shape=(2,), dtype=np.int32)
        expected['nothing'] = {}
        co.metadata['source'] = 'unit test'
        co.metadata['note'] = 'two keys'
        co.commit('rich repository')
    return repo, expected
