"""The staging mount with the CLI beside it (staging-mount issue, items 2, 3, 10, 11, 15 and df of 16).

``hangarfs status`` and ``diff --staged`` show the net difference from the base commit; writing a
sample's own bytes back is no change; ``reset``, ``import``, ``column`` and ``meta`` reach the daemon
that holds the writer, as ``commit`` does; every refusal is logged once with the rule it breaks; SIGTERM
unmounts cleanly; ``df`` shows the repository's size.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository

from .conftest import Mounts, is_mounted, run_cli, wait_gone
from .tools import bash, daemon_log, image, user_repo

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(180)]


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    repo = user_repo(tmp_path / 'repo')
    repo.create_branch('other')
    return repo


def test_writing_a_samples_own_bytes_back_is_no_change(
    repo: Repository, mounts: Mounts, tmp_path: Path
) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    bash(f'cp images/1.npy {tmp_path}/x.npy && cp {tmp_path}/x.npy images/1.npy', mp)
    bash(f'cp captions/2.txt {tmp_path}/c.txt && cat {tmp_path}/c.txt > captions/2.txt', mp)
    assert 'Nothing staged.' in run_cli('-C', repo.path, 'status').stdout
    proc = run_cli('-C', repo.path, 'commit', '-m', 'same bytes', check=False)
    assert proc.returncode == 1 and 'nothing to commit' in proc.stderr
    run_cli('umount', str(mp))
    assert 'the writer is on branch other' in run_cli('-C', repo.path, 'checkout', 'other').stdout


def test_status_counts_the_net_change(repo: Repository, mounts: Mounts, tmp_path: Path) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    np.save(tmp_path / 'new.npy', image(77))
    bash(
        f'cp {tmp_path}/new.npy images/50.npy && mv images/50.npy images/51.npy '
        f'&& mv images/51.npy images/52.npy && mv images/52.npy {tmp_path}/out.npy && rm images/5.npy',
        mp,
    )
    status = run_cli('-C', repo.path, 'status').stdout
    assert '  column images: 1 deleted\n' in status and 'added' not in status, status
    diff = run_cli('-C', repo.path, 'diff', '--staged', '--keys').stdout
    assert 'images deleted: 5' in diff and 'added:' not in diff
    staged = json.loads(run_cli('-C', repo.path, 'diff', '--staged', '--json').stdout)
    assert staged['columns']['images'] == {'added': [], 'deleted': [5], 'mutated': []}
    assert np.array_equal(np.load(tmp_path / 'out.npy'), image(77))  # the file left the mount whole


def test_reset_import_column_and_meta_reach_the_daemon(
    repo: Repository, mounts: Mounts, tmp_path: Path
) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    os.unlink(mp / 'images' / '1.npy')
    assert 'staging area reset to master' in run_cli('-C', repo.path, 'reset', '--hard').stdout
    assert (mp / 'images' / '1.npy').exists() and 'Nothing staged' in run_cli(
        '-C', repo.path, 'status'
    ).stdout
    np.save(tmp_path / '60.npy', image(60))
    assert (
        'staged 1 sample(s)' in run_cli('-C', repo.path, 'import', 'images', str(tmp_path / '60.npy')).stdout
    )
    assert np.array_equal(np.load(mp / 'images' / '60.npy'), image(60))
    run_cli('-C', repo.path, 'column', 'create', 'masks', 'float32', '4', '4')
    assert os.listdir(mp / 'masks') == ['.schema.json']
    run_cli('-C', repo.path, 'column', 'rename', 'captions', 'texts')
    run_cli('-C', repo.path, 'column', 'delete', 'vols')
    run_cli('-C', repo.path, 'meta', 'set', 'note', 'from the CLI')
    assert (mp / 'texts' / '3.txt').read_text() == 'caption 3' and not (mp / 'captions').exists()
    assert not (mp / 'vols').exists()
    assert (mp / '.hangarfs' / 'metadata' / 'note').read_text() == 'from the CLI'
    assert run_cli('-C', repo.path, 'meta', 'get', 'note').stdout == 'from the CLI\n'
    listing = run_cli('-C', repo.path, 'column', 'list').stdout
    assert 'masks' in listing and '(new)' in listing and 'vols' not in listing
    proc = run_cli('-C', repo.path, 'reset', check=False)
    assert proc.returncode == 1 and 'reset --hard' in proc.stderr
    digest = run_cli('-C', repo.path, 'commit', '-m', 'through the daemon').stdout.strip()
    with closing(repo.checkout(commit=digest)) as co:
        assert co['texts'][3] == 'caption 3' and 'masks' in co.columns and 'vols' not in co.columns
        assert co.metadata['note'] == 'from the CLI' and np.array_equal(co['images'][60], image(60))


REFUSALS = {
    'a b.npy': 'images',  # a space
    'ü.npy': 'images',  # not ASCII
    'x' * 300 + '.npy': 'images',  # too long a key
    'a.npz': 'images',  # an archive, not a sample
    '1.npy': 'captions',  # an array file in a str column
}


def test_every_refusal_is_logged_once_with_its_rule(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    for name, column in REFUSALS.items():
        assert bash(f"cp images/1.npy '{column}/{name}'", mp, check=False).returncode != 0, name
    assert bash('mkdir images/sub', mp, check=False).returncode != 0
    assert bash('ln -s 1.npy images/sym.npy', mp, check=False).returncode != 0
    assert bash('ln images/1.npy images/hard.npy', mp, check=False).returncode != 0
    refusals = [line for line in daemon_log(mp).splitlines() if 'refused' in line]
    rules = {
        'a b.npy': 'a b',
        'ü.npy': 'ü',
        'x' * 300: 'the limit is 255',
        'a.npz': '.npz files are not samples',
        'captions/1.npy': 'a str column holds .txt files, not .npy',
        'images/sub': "column 'images' is flat",
        'sym.npy': 'links are not supported',
        'hard.npy': 'links are not supported',
    }
    for name, rule in rules.items():
        lines = [line for line in refusals if name in line]
        assert len(lines) == 1 and rule in lines[0], (name, lines)
    assert len(refusals) == len(rules)


def test_sigterm_unmounts_cleanly(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    np.save(mp / 'images' / '70.npy', image(70))
    pid = json.loads((mp / '.hangarfs' / 'mount.json').read_text())['pid']
    log = Path(json.loads((mp / '.hangarfs' / 'mount.json').read_text())['log'])
    os.kill(pid, signal.SIGTERM)
    assert wait_gone(pid, 20)
    assert not is_mounted(mp)
    text = log.read_text()
    assert 'SIGTERM: unmounting' in text and 'daemon exiting' in text
    assert 'mount failed' not in text and 'Traceback' not in text and 'ERROR' not in text
    with closing(repo.checkout(write=True)) as co:  # the lock is free and the staged sample is there
        assert np.array_equal(co['images'][70], image(70))


def test_df_shows_the_repository_size(repo: Repository, mounts: Mounts) -> None:
    mp = mounts.mount(repo.path, '--write', '--branch', 'master')
    out = subprocess.run(['df', '-B1', '--output=used,avail', str(mp)], capture_output=True, text=True)
    used, avail = (int(x) for x in out.stdout.split()[-2:])
    du = int(
        subprocess.run(
            ['du', '-sB1', str(Path(repo.path) / '.hangarfs')], capture_output=True, text=True
        ).stdout.split()[0]
    )
    assert used > 0 and avail > 0 and abs(used - du) <= max(1 << 20, du // 10), (used, du)
