"""The CLI as users type it (staging-mount issue, items 12, 14, 16 and 17): ``-C`` after the
subcommand, quiet exits into a closed pipe, git habits (relative refs, ``log -n``, column and metadata
commands, verify's progress bar, shell completion) and messages that name CLI flags."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from tests.helpers import new_repository

HANGARFS = str(Path(sys.executable).with_name('hangarfs'))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HANGARFS, *args], capture_output=True, text=True, timeout=120, env=env)


def ok(*args: str) -> str:
    proc = run(*args)
    assert proc.returncode == 0, f'hangarfs {" ".join(args)} failed ({proc.returncode}): {proc.stderr}'
    return proc.stdout


def fails(*args: str) -> str:
    proc = run(*args)
    assert proc.returncode == 1, f'hangarfs {" ".join(args)} exited {proc.returncode}: {proc.stdout}'
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('hangarfs: error: '), proc.stderr
    return lines[0]


@pytest.fixture
def repo(repo_path: Path) -> Repository:
    repo = new_repository(repo_path)
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('labels', shape=(1,), dtype=np.int64)[0] = np.array([0])
        co.commit('first')
        co['labels'][1] = np.array([1])
        co.commit('second')
        co['labels'][2] = np.array([2])
        co.commit('third')
    return repo


def test_dash_c_goes_before_or_after_the_subcommand(repo: Repository, tmp_path: Path) -> None:
    for args in (('-C', repo.path, 'status'), ('status', '-C', repo.path)):
        assert ok(*args).startswith('On branch master')
    assert ok('branch', 'list', '-C', repo.path).startswith('* master')
    assert 'third' in ok('log', '-n', '1', '-C', repo.path)
    assert 'init' in fails('status', '-C', str(tmp_path))


def test_a_closed_pipe_ends_the_command_quietly(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co['labels'].update_batch(list(range(100, 30100)), np.zeros((30000, 1), np.int64))
    proc = subprocess.Popen(
        [HANGARFS, '-C', repo.path, 'diff', '--staged', '--keys'],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()  # as `| head -c 10` does
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141 and err == b''  # like a tool killed by SIGPIPE, silently


def test_importing_the_same_files_twice_stages_nothing(repo: Repository, tmp_path: Path) -> None:
    np.save(tmp_path / '1.npy', np.array([1]))  # what labels[1] holds already
    ok('-C', repo.path, 'import', 'labels', str(tmp_path / '1.npy'))
    ok('-C', repo.path, 'import', 'labels', str(tmp_path / '1.npy'))
    assert 'Nothing staged.' in ok('-C', repo.path, 'status')
    assert 'nothing to commit' in fails('-C', repo.path, 'commit', '-m', 'again')
    ok('-C', repo.path, 'branch', 'create', 'other')
    assert 'the writer is on branch other' in ok('-C', repo.path, 'checkout', 'other')


def test_relative_refs_log_count_and_decorations(repo: Repository) -> None:
    lines = ok('-C', repo.path, 'log').splitlines()
    assert re.fullmatch(r'\* [0-9a-f]{12} \(HEAD -> master\) third', lines[0]) and len(lines) == 3
    assert ok('-C', repo.path, 'log', '-n', '2').splitlines() == lines[:2]
    assert ok('-C', repo.path, 'log', 'master~1').splitlines() == lines[1:]
    assert 'labels' in ok('-C', repo.path, 'diff', 'HEAD~2', 'HEAD')
    assert 'has no parent' in fails('-C', repo.path, 'log', 'master~3')
    assert 'created branch old at' in ok('-C', repo.path, 'branch', 'create', 'old', 'HEAD^')


def test_columns_and_metadata_from_the_cli(repo: Repository) -> None:
    ok('-C', repo.path, 'column', 'create', 'masks', 'float32', '4', '4')
    listing = ok('-C', repo.path, 'column', 'list')  # staged columns show (item 17)
    assert re.search(r'^masks\s+0\s+float32 \(4, 4\)\s+flat\s+\w+\s+\(new\)$', listing, re.M), listing
    assert 'masks' not in ok('-C', repo.path, 'column', 'list', 'master')
    ok('-C', repo.path, 'column', 'rename', 'labels', 'targets')
    ok('-C', repo.path, 'meta', 'set', 'source', 'a lab')
    assert ok('-C', repo.path, 'meta', 'list') == 'source\ta lab\n'
    assert ok('-C', repo.path, 'meta', 'list', 'master') == ''
    digest = ok('-C', repo.path, 'commit', '-m', 'renamed').strip()
    assert ok('-C', repo.path, 'meta', 'get', 'source', digest[:8]) == 'a lab\n'
    ok('-C', repo.path, 'column', 'delete', 'masks')
    ok('-C', repo.path, 'meta', 'delete', 'source')
    assert 'column masks: column removed' in ok('-C', repo.path, 'status')
    assert "no metadata key 'source'" in fails('-C', repo.path, 'meta', 'get', 'source')
    assert "no column named 'nope'" in fails('-C', repo.path, 'column', 'delete', 'nope')


def test_verify_shows_progress_and_covers_staged_samples(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co['labels'][7] = np.array([7])
    proc = run('-C', repo.path, 'verify', env={**os.environ, 'HANGARFS_PROGRESS': '1'})
    assert proc.returncode == 0 and '1 of them staged' in proc.stdout
    assert 'verify:' in proc.stderr and 'sample' in proc.stderr  # tqdm's bar


def test_shell_completion_is_generated(repo: Repository) -> None:
    proc = run(env={**os.environ, '_HANGARFS_COMPLETE': 'bash_source'})
    assert proc.returncode == 0 and '_hangarfs_completion' in proc.stdout
    assert 'eval "$(_HANGARFS_COMPLETE=bash_source hangarfs)"' in ok('--help')


def test_messages_name_cli_commands(repo: Repository, tmp_path: Path) -> None:
    line = fails('-C', repo.path, 'checkout', 'nope')
    assert '`hangarfs branch create nope [BASE]`' in line
    line = fails('-C', repo.path, 'init', '--name', 'A', '--email', 'a@b')
    assert '--remove-old' in line and 'remove_old' not in line
    line = fails('-C', str(tmp_path), 'log')
    assert f'`hangarfs -C {tmp_path} init`' in line and 'Repository(' not in line
    empty = new_repository(tmp_path / 'empty')
    line = fails('-C', empty.path, 'export', 'x', '-o', str(tmp_path / 'out'))
    assert (
        line
        == "hangarfs: error: branch 'master' has no commits yet, so there is nothing to read; commit first"
    )
