"""What the kernel caches on the low-level adapter, counted from the daemon's request log (--debug).

Real mounts and real tools: ``ls``, ``find``, ``du``, ``cat``, numpy. Each test counts the FUSE
requests the daemon answered while a command ran: a cached listing, name or page costs none.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository

from .conftest import Mounts, make_repo

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(120)]

REQUEST = re.compile(r'request (\w+) nodeid=')
PER_FILE = ('LOOKUP', 'GETATTR', 'OPEN', 'READ', 'READDIR', 'READDIRPLUS', 'OPENDIR', 'FLUSH', 'RELEASE')


def per_file(counted: collections.Counter[str]) -> int:
    """Requests that a cached name, attribute, page or listing would have spared."""
    return sum(counted[op] for op in PER_FILE)


def raw_read(path: Path) -> bytes:
    """A file's bytes by os.open/os.read: no isatty() question (Python's open() asks one)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return b''.join(iter(lambda: os.read(fd, 1 << 20), b''))
    finally:
        os.close(fd)


def requests_during(mp: Path, action: Callable[[], object]) -> collections.Counter[str]:
    """The FUSE requests (by opcode) the daemon serving ``mp`` logged while ``action`` ran."""
    log = Path(json.loads((mp / '.hangarfs' / 'mount.json').read_text())['log'])
    before = log.stat().st_size
    action()
    with open(log, 'rb') as fh:
        fh.seek(before)
        return collections.Counter(REQUEST.findall(fh.read().decode()))


def run(*cmd: str | Path) -> str:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    repo = make_repo(tmp_path / 'repo')
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('images', shape=(28, 28), dtype=np.uint8)
        col.update_batch(
            list(range(3000)), (np.arange(3000 * 784).reshape(3000, 28, 28) % 251).astype(np.uint8)
        )
        co.add_str_column('notes').update({i: f'note {i}' for i in range(50)})
        co.commit('one')
    return repo


def test_a_commit_mount_lists_once_then_the_kernel_answers(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--ref', repo.store.refs.branch_head('master') or '', '--debug')
    images = mp / 'images'
    first: list[str] = []
    counted = requests_during(mp, lambda: first.extend(run('ls', '-f', images).split()))
    assert len(first) == 3003 and counted['READDIRPLUS'] > 1  # the daemon listed 3,002 entries
    again: list[str] = []
    counted = requests_during(mp, lambda: again.extend(run('ls', '-f', images).split()))
    assert sorted(again) == sorted(first)
    assert counted['READDIRPLUS'] + counted['READDIR'] == 0, counted  # the second listing: the kernel's
    # every entry came with its attributes: find, du and ls -l ask nothing more, per file or at all
    counted = requests_during(mp, lambda: run('find', images, '-printf', '%s\n'))
    counted += requests_during(mp, lambda: run('du', '-s', images))
    counted += requests_during(mp, lambda: run('ls', '-l', images))
    assert per_file(counted) == 0 and counted['GETXATTR'] <= 1, counted  # ENOSYS once: never again
    sizes = {int(s) for s in run('find', images, '-name', '*.npy', '-printf', '%s\n').split()}
    assert sizes == {(images / '0.npy').stat().st_size} and len(np.load(images / '7.npy').tobytes()) == 784


def test_a_commit_mount_sends_no_open_and_serves_warm_reads_from_the_page_cache(
    repo: Repository, mounts: Mounts
) -> None:
    mp = mounts.mount(repo.path, '--ref', repo.store.refs.branch_head('master') or '', '--debug')
    keys = range(0, 3000, 30)
    paths = [mp / 'images' / f'{i}.npy' for i in keys]
    loaded: list[np.ndarray] = []
    counted = requests_during(mp, lambda: loaded.extend(np.load(p) for p in paths))
    expected = (np.arange(3000 * 784).reshape(3000, 28, 28) % 251).astype(np.uint8)
    assert all(np.array_equal(a, expected[k]) for a, k in zip(loaded, keys))
    # cold: a LOOKUP and the isatty question, whose answer put the file into the page cache: no READ
    assert counted['IOCTL'] == len(paths) and len(paths) <= counted['LOOKUP'] <= len(paths) + 1, counted
    assert counted['OPEN'] + counted['READ'] == 0, counted
    counted = requests_during(mp, lambda: [np.load(p) for p in paths])
    # warm: no LOOKUP, no READ, no OPEN; only Python's isatty() question on each open() (TCGETS),
    # which the kernel forwards for every open of a FUSE file whatever it was answered before
    assert set(counted) <= {'IOCTL'} and counted['IOCTL'] <= len(paths), counted
    counted = requests_during(mp, lambda: [raw_read(p) for p in paths])
    assert sum(counted.values()) == 0, counted


def test_a_branch_mount_invalidates_exactly_what_a_commit_changed(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--ref', 'master', '--debug')
    images = mp / 'images'
    run('ls', '-f', images)
    changed, kept = images / '5.npy', images / '6.npy'
    before = changed.read_bytes(), kept.read_bytes()
    counted = requests_during(mp, lambda: (raw_read(changed), raw_read(kept), run('ls', '-f', images)))
    assert per_file(counted) == 0, counted  # between commits: as cached as a commit mount
    with closing(repo.checkout(write=True)) as co:
        co['images'][5] = np.full((28, 28), 7, np.uint8)
        co['images'][3000] = np.zeros((28, 28), np.uint8)
        co.commit('two')
    deadline = time.monotonic() + 5
    while changed.read_bytes() == before[0]:
        assert time.monotonic() < deadline, 'the new commit did not show'
        time.sleep(0.05)
    assert np.load(changed).max() == 7 and (images / '3000.npy').exists()
    assert '3000.npy' in os.listdir(images)
    counted = requests_during(mp, lambda: raw_read(kept))
    assert per_file(counted) == 0, counted  # an unchanged sample kept its name and its pages
    commit = json.loads((mp / '.hangarfs' / 'commit.json').read_text())
    assert commit['message'] == 'two'


def test_the_mfusepy_adapter_still_serves_for_comparison(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--ref', 'master', '--adapter', 'mfusepy')
    assert json.loads((mp / '.hangarfs' / 'mount.json').read_text())['adapter'] == 'mfusepy'
    assert len(os.listdir(mp / 'images')) == 3001
    assert np.load(mp / 'images' / '9.npy').shape == (28, 28)
