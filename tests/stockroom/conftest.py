"""Fixtures for StockRoom: a stock in a real git repository, the working directory inside it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hangarfs.stockroom import init_repo

STOCK = str(Path(sys.executable).with_name('stock'))
GIT_ENV = {
    'GIT_AUTHOR_NAME': 'Ada',
    'GIT_AUTHOR_EMAIL': 'ada@example.org',
    'GIT_COMMITTER_NAME': 'Ada',
    'GIT_COMMITTER_EMAIL': 'ada@example.org',
    'GIT_CONFIG_NOSYSTEM': '1',
}


def git(root: Path, *args: str) -> str:
    """Run a real git command in ``root``; return its stdout (a failure fails the test)."""
    proc = subprocess.run(
        ['git', *args], cwd=root, capture_output=True, text=True, timeout=60, env={**os.environ, **GIT_ENV}
    )
    assert proc.returncode == 0, f'git {" ".join(args)} failed: {proc.stderr}'
    return proc.stdout


def stock_cli(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the ``stock`` console script in ``root``."""
    proc = subprocess.run(
        [STOCK, *args], cwd=root, capture_output=True, text=True, timeout=120, env={**os.environ, **GIT_ENV}
    )
    if check:
        assert proc.returncode == 0, f'stock {" ".join(args)} failed ({proc.returncode}): {proc.stderr}'
    return proc


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A code project: a git repository made a stock (``stock init``), the working directory in it."""
    root = tmp_path / 'project'
    root.mkdir()
    git(root, 'init', '-q', '-b', 'main')
    git(root, 'config', 'user.name', 'Ada')
    git(root, 'config', 'user.email', 'ada@example.org')
    init_repo(path=root)  # name and email from git config
    (root / 'src').mkdir()
    monkeypatch.chdir(root / 'src')  # StockRoom() walks up from here
    return root
