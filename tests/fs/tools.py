"""Helpers for the staging-mount tests that run real tools: a repository like a user's, shell runs,
the daemon's log, and what the staging area holds."""

from __future__ import annotations

import json
import shutil
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from hangarfs import Repository
from hangarfs.engine.staging import StagingArea

from .conftest import make_repo


def image(i: int) -> np.ndarray:
    return np.full((28, 28), i % 256, np.uint8)


def user_repo(path: Path) -> Repository:
    """images (28x28 uint8), labels ((1,) int64), captions (str), scans (nested (4, 4) uint16) and vols
    (variable-shape float32, at most (8, 8)), all committed on master."""
    repo = make_repo(path)
    with closing(repo.checkout(write=True)) as co:
        images = co.add_ndarray_column('images', shape=(28, 28), dtype=np.uint8)
        images.update({i: image(i) for i in range(10)})
        co.add_ndarray_column('labels', shape=(1,), dtype=np.int64).update(
            {i: np.array([i]) for i in range(10)}
        )
        co.add_str_column('captions').update({i: f'caption {i}' for i in range(10)})
        scans = co.add_ndarray_column('scans', shape=(4, 4), dtype=np.uint16, contains_subsamples=True)
        scans['p1'] = {'axial': np.ones((4, 4), np.uint16), 'coronal': np.zeros((4, 4), np.uint16)}
        vols = co.add_ndarray_column('vols', shape=(8, 8), dtype=np.float32, variable_shape=True)
        vols['small'] = np.ones((2, 3), np.float32)
        co.metadata['source'] = 'test'
        co.commit('base')
    return repo


def bash(script: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a bash script (with pipefail); with ``check`` it must exit 0."""
    proc = subprocess.run(
        ['bash', '-o', 'pipefail', '-c', script], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if check and proc.returncode != 0:
        raise AssertionError(f'{script!r} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}')
    return proc


def daemon_log(mp: Path) -> str:
    return Path(json.loads((mp / '.hangarfs' / 'mount.json').read_text())['log']).read_text()


def staged_entries(repo: Repository) -> dict[str, Any]:
    """Everything the staging area holds (sample entries, schemas, metadata), read without the lock."""
    staging = StagingArea(repo.store)
    entries = {}
    for name in staging.staged_columns():
        entries[name] = dict(staging.iter_prefix(name.encode() + b'\x00'))
    return {'samples': entries, 'schemas': staging.schemas(), 'meta': staging.meta()}


def vim() -> str:
    found = shutil.which('vim') or shutil.which('vim.tiny')
    assert found, 'vim is missing: scripts/setup-env installs vim-tiny'
    return found
