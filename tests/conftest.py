"""Shared fixtures: real repositories on disk, child processes, and leak checks.

Every repository a test makes lives under its ``tmp_path``. After the test, the LMDB environments of
every repository found there are closed (each maps 1 TiB of address space, and the engine keeps
environments open for the life of the process), and any child process still running is killed.
"""

from __future__ import annotations

import gc
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.engine.lmdbenv import ENVIRONMENTS
from hangarfs.engine.store import STORE_DIR

USER = {'user_name': 'Ada', 'user_email': 'ada@example.org'}


def flip_byte(path: Path, offset: int) -> None:
    """Damage one byte of a file in place (for corruption tests)."""
    with open(path, 'r+b') as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


PROJECT_ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------- repositories


def release_repositories(root: Path) -> None:
    """Close the LMDB environments of every repository under ``root`` (in this process)."""
    gc.collect()
    for store in root.rglob(STORE_DIR):
        if store.is_dir():
            for env in ('history', 'staging'):
                ENVIRONMENTS.forget(str(store / env))


def new_repository(path: Path, **init_options: Any) -> Repository:
    """An initialized repository at ``path`` (created)."""
    repo = Repository(path, exists=False)
    repo.init(**USER, **init_options)
    return repo


@pytest.fixture(autouse=True)
def _release_lmdb_environments(tmp_path: Path) -> Iterator[None]:
    yield
    release_repositories(tmp_path)


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return tmp_path / 'repo'


@pytest.fixture
def repo(repo_path: Path) -> Repository:
    """An initialized, empty repository in tmp_path (branch master, no commits)."""
    return new_repository(repo_path)


# ---------------------------------------------------------------------------------------- contents


def value_fingerprint(value: Any) -> Any:
    """A comparable form of a sample: arrays by dtype, shape and bytes; str/bytes as they are."""
    if isinstance(value, np.ndarray):
        return ('ndarray', value.dtype.str, value.shape, hashlib.blake2b(value.tobytes()).hexdigest())
    if hasattr(value, 'items'):  # a nested sample
        return {k: value_fingerprint(v) for k, v in value.items()}
    return value


def checkout_contents(co: Any) -> dict[str, Any]:
    """Everything a checkout shows: every column's schema and samples in key order, and the metadata."""
    out: dict[str, Any] = {'metadata': dict(co.metadata.items())}
    for name in co.columns:
        col = co.columns[name]
        out[name] = {
            'schema': col.schema.to_dict(),
            'keys': list(col.keys()),
            'samples': {k: value_fingerprint(v) for k, v in col.items()},
        }
    return out


def repository_state(repo: Repository) -> dict[str, Any]:
    """Branch heads and the full contents of every branch head: what 'nothing changed' compares."""
    state: dict[str, Any] = {'branches': {}}
    for name in repo.list_branches():
        head = repo.store.refs.branch_head(name)
        contents = None
        if head:
            co = repo.checkout(commit=head)
            try:
                contents = checkout_contents(co)
            finally:
                co.close()
        state['branches'][name] = (head, contents)
    return state


# ---------------------------------------------------------------------------------------- child processes


class Children:
    """Python child processes started by a test; any still running at teardown is killed."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, code: str, *args: str, cwd: str | None = None) -> subprocess.Popen[str]:
        """Run ``code`` (dedented) in a fresh interpreter with ``args`` as sys.argv[1:]."""
        proc = subprocess.Popen(
            [sys.executable, '-u', '-c', textwrap.dedent(code), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd or str(PROJECT_ROOT),  # so that children can import tests.conftest
        )
        self.procs.append(proc)
        return proc

    def run(self, code: str, *args: str, timeout: float = 60) -> str:
        """Run ``code`` to completion and return its stdout; a non-zero exit fails the test."""
        proc = self.start(code, *args)
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f'child failed with status {proc.returncode}:\n{err}'
        return out

    @staticmethod
    def expect_line(proc: subprocess.Popen[str], prefix: str) -> str:
        """Read the child's stdout up to a line starting with ``prefix``; return that line."""
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(prefix):
                return line.rstrip('\n')
        err = proc.stderr.read() if proc.stderr is not None else ''
        raise AssertionError(f'child exited (status {proc.wait()}) before printing {prefix!r}:\n{err}')

    @staticmethod
    def kill(proc: subprocess.Popen[str]) -> None:
        """SIGKILL the child and reap it."""
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def children() -> Iterator[Children]:
    kids = Children()
    try:
        yield kids
    finally:
        kids.cleanup()
