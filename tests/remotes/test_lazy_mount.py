"""A clone mounted lazily (``hangarfs mount CLONE MNT --ref origin/master --lazy``) and read with the
tools users have: ``ls``, ``stat``, ``cp``, ``cp -r``, ``numpy.load`` (also memory-mapped),
``md5sum``; then the endpoint goes away and reads of samples not cached fail at once with EIO and a
log line, while cached ones still read. Real FUSE mounts under tmp_path, unmounted in teardown."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from tests.fs.conftest import Mounts, fuse_available, is_mounted
from tests.helpers import new_repository, npy_bytes
from tests.remotes.conftest import FAST_OPTIONS, RepoRemote, S3Server
from tests.remotes.netfaults import FaultyProxy
from tests.remotes.repos import array

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(180)]
BIG = (1024, 1024, 3)  # 12 MiB of float32: fetched in 8 MiB parts


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    if not fuse_available():
        pytest.fail('FUSE is not available (/dev/fuse or fusermount3 missing); scripts/test installs it')
    m = Mounts(tmp_path / 'mnt')
    try:
        yield m
    finally:
        m.cleanup()
    assert not [p for p in m.points if is_mounted(p)], 'mounts left behind'


def pushed_and_cloned(tmp_path: Path, remote: RepoRemote) -> Repository:
    src = new_repository(tmp_path / 'src')
    with closing(src.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(28, 28), dtype=np.uint8).update(
            {i: array('uint8', (28, 28), i) for i in range(50)}
        )
        co.add_str_column('captions').update({f'c{i}': f'caption {i}' for i in range(5)})
        vols = co.add_ndarray_column('volumes', shape=BIG, dtype=np.float32, variable_shape=True)
        vols['scan'] = array('float32', BIG, 3)
        co.commit('data')
    remote.add_to(src)
    src.remote.push('origin', 'master')
    clone = Repository(tmp_path / 'clone', exists=False)
    clone.clone('Bob', 'bob@example.org', remote.url, **remote.options)
    return clone


def mount_info(mp: Path) -> dict[str, object]:
    return json.loads((mp / '.hangarfs' / 'mount.json').read_text())  # type: ignore[no-any-return]


def test_lazy_mount_read_with_everyday_tools(tmp_path: Path, repo_remote: RepoRemote, mounts: Mounts) -> None:
    clone = pushed_and_cloned(tmp_path, repo_remote)
    mp = mounts.mount(clone.path, '--ref', 'origin/master', '--lazy', '--cache-size', '64M')
    assert mount_info(mp)['mode'] == 'lazy'
    names = os.listdir(mp / 'images')
    assert len(names) == 51 and (mp / 'images' / '7.npy').stat().st_size == 128 + 784
    assert (mp / 'volumes' / 'scan.npy').stat().st_size == len(npy_bytes(array('float32', BIG, 3)))
    cache = Path(mount_info(mp)['lazy']['cache_dir'])  # type: ignore[index]
    assert not list(cache.rglob('*/*'))  # listing and stat fetched nothing

    out = tmp_path / 'out'
    out.mkdir()
    subprocess.run(['cp', str(mp / 'images' / '3.npy'), str(out / '3.npy')], check=True, timeout=60)
    assert (out / '3.npy').read_bytes() == npy_bytes(array('uint8', (28, 28), 3))
    assert (np.load(mp / 'images' / '12.npy') == array('uint8', (28, 28), 12)).all()
    subprocess.run(['cp', '-r', str(mp / 'images'), str(out / 'images')], check=True, timeout=60)
    for i in range(50):
        assert (out / 'images' / f'{i}.npy').read_bytes() == npy_bytes(array('uint8', (28, 28), i))
    assert (out / 'images' / '.schema.json').is_file()
    assert (mp / 'captions' / 'c2.txt').read_text() == 'caption 2'

    expected = npy_bytes(array('float32', BIG, 3))
    md5 = subprocess.run(
        ['md5sum', str(mp / 'volumes' / 'scan.npy')], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()[0]
    assert md5 == hashlib.md5(expected).hexdigest()
    mapped = np.load(mp / 'volumes' / 'scan.npy', mmap_mode='r')
    assert mapped.shape == BIG and float(mapped[500, 7, 1]) == float(array('float32', BIG, 3)[500, 7, 1])
    del mapped
    assert len(list(cache.rglob('*/*'))) == 50 + 1 + 1  # what was read is cached, nothing more


def test_lazy_mount_offline_answers_eio_at_once(
    tmp_path: Path,
    s3_server: S3Server,
    proxy: FaultyProxy,
    mounts: Mounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv('AWS_ACCESS_KEY_ID', 'testing')
    monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', 'testing')
    remote = RepoRemote(
        's3', f's3://{s3_server.new_bucket()}/offline', {'endpoint_url': proxy.endpoint, **FAST_OPTIONS}
    )
    clone = pushed_and_cloned(tmp_path, remote)
    mp = mounts.mount(clone.path, '--ref', 'master', '--lazy')
    assert (np.load(mp / 'images' / '1.npy') == array('uint8', (28, 28), 1)).all()
    proxy.stop()  # the endpoint goes away
    for name in ('30.npy', '31.npy'):
        started = time.monotonic()
        proc = subprocess.run(['cat', str(mp / 'images' / name)], capture_output=True, timeout=30)
        assert proc.returncode != 0 and b'Input/output error' in proc.stderr
        assert time.monotonic() - started < 5  # at once, never a hang
    assert (np.load(mp / 'images' / '1.npy') == array('uint8', (28, 28), 1)).all()  # cached: still read
    log = Path(str(mount_info(mp)['log'])).read_text()
    assert "remote 'origin' is unreachable" in log, log[-2000:]
