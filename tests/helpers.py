"""Helpers shared by the tests: repositories, their contents, .npy bytes, child processes, waiting.

Fixtures and collection hooks live in ``conftest.py``; everything a test module (or a child process
a test starts) imports by name lives here, once.
"""

from __future__ import annotations

import gc
import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hangarfs import Repository
from hangarfs.engine.lmdbenv import ENVIRONMENTS
from hangarfs.engine.store import STORE_DIR

USER = {'user_name': 'Ada', 'user_email': 'ada@example.org'}
PROJECT_ROOT = Path(__file__).resolve().parent.parent
HANGARFS = str(Path(sys.executable).with_name('hangarfs'))  # the command line this interpreter installed


# ---------------------------------------------------------------------------------------- bytes and files


def npy_bytes(arr: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    """The bytes ``np.save`` writes for ``arr``: what a mounted ``.npy`` file must hold."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def flip_byte(path: Path, offset: int) -> None:
    """Damage one byte of a file in place (for corruption tests)."""
    with open(path, 'r+b') as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


# ---------------------------------------------------------------------------------------- waiting


def poll_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.01) -> bool:
    """Poll ``condition`` until it is true (return True) or ``timeout`` seconds pass (return False).

    The way tests wait for another thread, process or clock: on a condition with a deadline, never
    for a fixed time. (The only ``time.sleep`` in the tests is the poll interval here.)
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def wait_until(
    condition: Callable[[], bool], *, timeout: float = 10.0, interval: float = 0.01, what: str
) -> None:
    """``poll_until``, and fail the test if ``condition`` is not true within ``timeout`` seconds."""
    if not poll_until(condition, timeout=timeout, interval=interval):
        raise AssertionError(f'timed out after {timeout} s waiting for {what}')


# ---------------------------------------------------------------------------------------- the command line


def run_hangarfs(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``hangarfs ARGS`` as a user does, in a process of its own."""
    return subprocess.run([HANGARFS, *args], capture_output=True, text=True, timeout=timeout)


def hangarfs_ok(repo: Path, *args: str) -> str:
    """Run ``hangarfs -C repo ARGS``; it must succeed; returns stdout."""
    proc = run_hangarfs('-C', str(repo), *args)
    assert proc.returncode == 0, f'hangarfs {" ".join(args)} failed ({proc.returncode}): {proc.stderr}'
    return proc.stdout


def hangarfs_fails(repo: Path, *args: str) -> str:
    """Run ``hangarfs -C repo ARGS``; it must exit 1 with one line on stderr, which is returned."""
    proc = run_hangarfs('-C', str(repo), *args)
    assert proc.returncode == 1, f'hangarfs {" ".join(args)} exited {proc.returncode}: {proc.stdout}'
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('hangarfs: error: '), proc.stderr
    return lines[0]


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
    repo.init(**{**USER, **init_options})
    return repo


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
            cwd=cwd or str(PROJECT_ROOT),  # so that children can import tests.helpers
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
