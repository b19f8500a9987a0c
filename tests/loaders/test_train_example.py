"""examples/train_mnist.py, run as a user runs it: one epoch of the tutorial's MLP through
make_torch_dataset, then the same training from a FUSE mount of the same commit with a plain
``Dataset`` that numpy.loads files. Both must see the same data in the same order, so they print the
same loss and accuracy, to the last bit."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fs.conftest import Mounts, fuse_available, is_mounted
from tests.helpers import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / 'examples' / 'train_mnist.py'
pytestmark = [pytest.mark.fuse, pytest.mark.timeout(180)]


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


def run_example(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=150, cwd=PROJECT_ROOT
    )
    assert proc.returncode == 0, f'train_mnist.py {" ".join(args)} failed:\n{proc.stderr}'
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_training_from_a_commit_and_from_its_mount_agree(
    tmp_path: Path, mounts: Mounts, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / 'mnist'
    through_loader = run_example(str(repo), '--make', '1000', '--workers', '2')
    assert through_loader['train_samples'] == 800
    assert through_loader['accuracy'] > 0.5  # it learned: chance is 0.1
    mountpoint = mounts.mount(repo, '--ref', through_loader['commit'][:12])
    example = runpy.run_path(str(EXAMPLE), run_name='train_mnist')  # in this process: torch is imported
    capsys.readouterr()
    assert example['main'](['--mounted', str(mountpoint)]) == 0
    through_files = json.loads(capsys.readouterr().out)
    assert through_files == through_loader
