"""Editors and in-place editing tools on the staging mount (staging-mount issue, items 4 and 5).

They write a temporary file next to the one they edit (``sedXXXXXX``, perl's temp name,
``tempfile.mkstemp``'s ``tmpXXXXXXXX``, ``.7.txt.swp``, ``7.txt~``, ``7.txt.lock``, vim's ``4913``
probe), then rename it onto the file, and check the file's mtime between reading and writing: names
that cannot be samples are scratch space, and a sample keeps its own stable mtime.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository

from .conftest import Mounts, run_cli
from .tools import bash, daemon_log, image, user_repo, vim

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(180)]


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return user_repo(tmp_path / 'repo')


def committed(repo: Repository, column: str, key: object) -> object:
    with closing(repo.checkout()) as co:
        return co[column].get(key)


def test_sed_perl_vim_and_mkstemp_edit_samples(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    bash("sed -i 's/caption/sed/' captions/1.txt", mp)
    bash("perl -pi -e 's/caption/perl/' captions/2.txt", mp)
    bash(f"{vim()} -E -s -u NONE -c '%s/caption/vim/' -c wq captions/3.txt", mp)
    bash(f"{vim()} -E -s -c '%s/vim/vim again/' -c wq captions/3.txt", mp)  # a second save: no "changed"
    code = (
        'import os, sys, tempfile\n'
        "fd, tmp = tempfile.mkstemp(dir='captions')\n"
        "os.write(fd, b'mkstemp'); os.close(fd); os.replace(tmp, 'captions/4.txt')\n"
        "fd, tmp = tempfile.mkstemp(dir='images', suffix='.npy')\n"  # a valid sample name: staged, moved
        "os.write(fd, open('images/9.npy', 'rb').read()); os.close(fd); os.replace(tmp, 'images/19.npy')\n"
    )
    subprocess.run([sys.executable, '-c', code], cwd=mp, check=True, timeout=60)
    assert [(mp / 'captions' / f'{i}.txt').read_text() for i in (1, 2, 3, 4)] == [
        'sed 1',
        'perl 2',
        'vim again 3\n',  # vim ends the last line
        'mkstemp',
    ]
    names = os.listdir(mp / 'captions') + os.listdir(mp / 'images')
    assert not [n for n in names if n.startswith(('sed', 'tmp', '.', '4913')) and n != '.schema.json'], names
    assert 'not staged' not in daemon_log(mp) and 'refused' not in daemon_log(mp)
    run_cli('-C', repo.path, 'commit', '-m', 'edited')
    assert committed(repo, 'captions', 3) == 'vim again 3\n'
    assert committed(repo, 'captions', 4) == 'mkstemp'
    assert np.array_equal(committed(repo, 'images', 19), image(9))  # type: ignore[arg-type]


def test_temp_then_rename_the_way_nano_emacs_git_and_rsync_do(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    bash(
        "printf 'swap' > captions/.5.txt.swp && cp captions/5.txt captions/5.txt~ "  # editor swap, backup
        "&& printf 'nano' > captions/5.txt.tmp && mv captions/5.txt.tmp captions/5.txt "  # temp + rename
        "&& printf 'git' > captions/6.txt.lock && mv captions/6.txt.lock captions/6.txt "  # lockfile
        "&& printf 'kept' > captions/'#7.txt#' "
        '&& rm captions/.5.txt.swp',
        mp,
    )
    assert (mp / 'captions' / '5.txt').read_text() == 'nano'
    assert (mp / 'captions' / '6.txt').read_text() == 'git'
    assert (mp / 'captions' / '5.txt~').read_text() == 'caption 5'  # scratch: readable until unmounted
    assert sorted(n for n in os.listdir(mp / 'captions') if not n[0].isdigit() or '~' in n) == [
        '#7.txt#',
        '.schema.json',
        '5.txt~',
    ]
    status = run_cli('-C', repo.path, 'status').stdout
    assert 'Scratch files in the staging mount' in status and '/captions/5.txt~' in status
    digest = run_cli('-C', repo.path, 'commit', '-m', 'temp files').stdout.strip()
    with closing(repo.checkout(commit=digest)) as co:
        assert sorted(co['captions'].keys()) == list(range(10))  # scratch files are no samples
    run_cli('umount', str(mp))
    log = Path(repo.path, '.hangarfs', 'logs').glob('mount-*.log')
    assert any('dropped 2 scratch file(s)' in p.read_text() for p in log)


def test_a_sample_keeps_its_mtime_until_it_changes(repo: Repository, mounts: Mounts, tmp_path: Path) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master', name='stage')
    images = mp / 'images'
    before = {n: (images / n).stat().st_mtime_ns for n in ('1.npy', '2.npy')}
    np.save(images / '1.npy', image(101))
    assert (images / '2.npy').stat().st_mtime_ns == before['2.npy']  # a change elsewhere: not this one
    changed = (images / '1.npy').stat().st_mtime_ns
    assert changed > before['1.npy']
    bash("touch -d '2020-02-02 20:20:20' images/3.npy captions/3.txt images", mp)
    stamp = (images / '3.npy').stat().st_mtime
    assert stamp == (mp / 'captions' / '3.txt').stat().st_mtime == images.stat().st_mtime
    assert stamp == 1580674820.0
    marker = tmp_path / 'marker'
    marker.write_text('')
    os.utime(marker, ns=(changed - 1, changed - 1))
    newer = bash(f'find images -newer {marker} -name "*.npy"', mp).stdout.split()
    assert newer == ['images/1.npy']  # find -newer sees the one sample changed since
    digest = run_cli('-C', repo.path, 'commit', '-m', 'one image').stdout.strip()
    assert (images / '1.npy').stat().st_mtime_ns == changed and (images / '3.npy').stat().st_mtime == stamp
    assert (images / '2.npy').stat().st_mtime_ns == before['2.npy']  # the commit changed nothing here
    run_cli('umount', str(mp))
    mp = mounts.mount(repo.path, '--write', '--branch', 'master', name='again')
    assert (mp / 'images' / '1.npy').stat().st_mtime_ns == changed  # kept with the staging area
    assert (mp / 'images' / '3.npy').stat().st_mtime == stamp
    assert (mp / 'images' / '2.npy').stat().st_mtime_ns == before['2.npy']
    assert len(digest) == 64
