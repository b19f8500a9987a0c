"""The README's shell examples run as written (staging-mount issue, items 12 and 13).

Every ```sh block of README.md runs, in order, in one bash with ``set -euo pipefail``, with a fresh
HOME (the examples live under ``~``) and this checkout's ``hangarfs`` and ``python`` first on PATH;
``scripts/demo``, the README's first command, runs too. Blocks marked ``text`` are reference listings
(syntax, layouts, the install and test commands) and are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

from .conftest import force_unmount, is_mounted

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(300)]

README = PROJECT_ROOT / 'README.md'


def shell_blocks(text: str) -> list[str]:
    return re.findall(r'^```sh\n(.*?)^```$', text, re.S | re.M)


def test_every_fenced_block_says_what_it_is() -> None:
    """sh blocks run (below); text and python blocks are listings: none is left unlabelled."""
    labels = re.findall(r'^```(\w*)\n.*?^```$', README.read_text(), re.S | re.M)
    assert labels and set(labels) <= {'sh', 'text', 'python'}, labels
    assert labels.count('sh') >= 3


def test_every_shell_block_of_the_readme_runs(tmp_path: Path) -> None:
    home = tmp_path / 'home'
    home.mkdir()
    script = 'set -euo pipefail\n' + '\n'.join(shell_blocks(README.read_text()))
    env = {
        **os.environ,
        'HOME': str(home),
        'PATH': f'{Path(sys.executable).parent}:{os.environ["PATH"]}',
    }
    env.pop('HANGARFS_PROGRESS', None)
    try:
        proc = subprocess.run(
            ['bash', '-c', script], cwd=home, env=env, capture_output=True, text=True, timeout=240
        )
    finally:
        mnt = home / 'mnt'
        for mp in mnt.iterdir() if mnt.exists() else ():
            force_unmount(mp)
    assert proc.returncode == 0, (
        f'exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}'
    )
    assert not [mp for mp in (home / 'mnt').iterdir() if is_mounted(mp)]
    out = proc.stdout
    assert 'column images: new column, 60 added' in out  # status before the first commit
    assert re.search(r'^\* [0-9a-f]{12} \(HEAD -> master\) captions column, source$', out, re.M), out
    assert 'column images: 41 added, 1 deleted, 39 mutated' in out  # the staging mount's net change
    assert len(re.findall(r'^[0-9a-f]{64}$', out, re.M)) == 3  # three commits, the last by the daemon


def test_the_demo_passes(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(PROJECT_ROOT / 'scripts' / 'demo')],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, 'TMPDIR': str(tmp_path)},
    )
    assert proc.returncode == 0, f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    assert proc.stdout.rstrip().endswith('demo done.')
