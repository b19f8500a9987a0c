"""The repository commands of the CLI (issue 2), run as a user runs them: real `hangarfs` processes.

init, status, log, summary, branch, commit, column, import, export and verify. Exit status 0 on
success; otherwise 1 and one line on stderr that says what was wrong, with nothing stored changed.
"""

from __future__ import annotations

import json
import re
from contextlib import closing
from pathlib import Path

import h5py
import numpy as np
import pytest

from hangarfs import Repository
from tests.helpers import flip_byte, release_repositories, run_hangarfs
from tests.helpers import hangarfs_fails as fails
from tests.helpers import hangarfs_ok as ok

DIGEST = re.compile(r'^[0-9a-f]{64}$')


def save_npy(path: Path, arr: np.ndarray) -> bytes:
    np.save(path, arr)
    return path.read_bytes()


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / 'repo'
    path.mkdir()
    ok(path, 'init', '--name', 'Ada', '--email', 'ada@example.org')
    return path


@pytest.fixture
def images_dir(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """Ten (4, 5) uint8 images as .npy files: int keys 0..8 and the str key '9' (file @9.npy)."""
    src = tmp_path / 'images'
    src.mkdir()
    rng = np.random.default_rng(7)
    files = {}
    for i in range(9):
        files[f'{i}.npy'] = save_npy(src / f'{i}.npy', rng.integers(0, 255, (4, 5), dtype=np.uint8))
    files['@9.npy'] = save_npy(src / '@9.npy', np.full((4, 5), 9, np.uint8))
    return src, files


def test_a_repository_from_init_to_export(
    tmp_path: Path, repo_dir: Path, images_dir: tuple[Path, dict[str, bytes]]
) -> None:
    src, files = images_dir
    assert 'Nothing staged.' in ok(repo_dir, 'status')
    assert 'staged column images (ndarray uint8 (4, 5), backend' in ok(
        repo_dir, 'column', 'create', 'images', 'uint8', '4', '5'
    )
    ok(repo_dir, 'column', 'create', 'labels', 'int64', '1', '--backend', 'numpy')
    ok(repo_dir, 'column', 'create', 'captions', 'str')
    texts = tmp_path / 'texts'
    texts.mkdir()
    (texts / '0.txt').write_text('a cat', encoding='utf-8')
    (texts / 'x.txt').write_text('ünïcödé', encoding='utf-8')

    assert 'staged 10 sample(s)' in ok(repo_dir, 'import', 'images', str(src))
    assert 'staged 2 sample(s)' in ok(repo_dir, 'import', 'captions', str(texts))
    status = ok(repo_dir, 'status')
    assert 'column images: new column, 10 added' in status
    assert 'column captions: new column, 2 added' in status

    digest = ok(repo_dir, 'commit', '-m', 'first images').strip()
    assert DIGEST.match(digest)
    assert 'Nothing staged.' in ok(repo_dir, 'status')
    assert 'first images' in ok(repo_dir, 'log') and digest[:8] in ok(repo_dir, 'log')
    summary = json.loads(ok(repo_dir, 'summary', '--json'))
    assert summary['columns']['images']['samples'] == 10
    assert 'images' in ok(repo_dir, 'summary')
    listing = ok(repo_dir, 'column', 'list')
    assert re.search(r'^images\s+10\s+uint8 \(4, 5\)', listing, re.M), listing
    assert re.search(r'^labels\s+0\s+int64 \(1,\)\s+flat\s+numpy', listing, re.M), listing

    out = tmp_path / 'out'
    assert 'wrote 10 file(s)' in ok(repo_dir, 'export', 'images', digest[:10], '-o', str(out))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files  # byte-identical to numpy.save
    ok(repo_dir, 'export', 'captions', '-o', str(tmp_path / 'caps'))
    assert (tmp_path / 'caps' / 'x.txt').read_text(encoding='utf-8') == 'ünïcödé'
    assert 'no problems' in ok(repo_dir, 'verify')

    with closing(Repository(repo_dir).checkout()) as co:  # what the API sees
        assert co['images', '9'].sum() == 9 * 20 and co['captions', 0] == 'a cat'
    release_repositories(tmp_path)


def test_branches(repo_dir: Path, images_dir: tuple[Path, dict[str, bytes]]) -> None:
    src, _ = images_dir
    ok(repo_dir, 'column', 'create', 'images', 'uint8', '4', '5')
    ok(repo_dir, 'import', 'images', str(src), '-m', 'base')
    assert 'created branch dev at' in ok(repo_dir, 'branch', 'create', 'dev')
    listing = ok(repo_dir, 'branch', 'list')
    assert re.search(r'^\* master\s', listing, re.M) and re.search(r'^  dev\s', listing, re.M)
    assert 'dev' in fails(repo_dir, 'branch', 'create', 'dev')

    ok(repo_dir, 'checkout', 'dev')
    # the same bytes again change nothing (samples are content-addressed): nothing to commit
    assert 'already has' in fails(repo_dir, 'import', 'images', str(src / '1.npy'), '-m', 'same data')
    (src / '0.npy').write_bytes(save_npy(src / '0.npy', np.zeros((4, 5), np.uint8)))
    ok(repo_dir, 'import', 'images', str(src / '0.npy'), '-m', 'zero image on dev')
    ok(repo_dir, 'checkout', 'master')
    assert 'dev' in fails(repo_dir, 'branch', 'delete', 'dev')  # its commit is on no other branch
    assert 'deleted branch dev' in ok(repo_dir, 'branch', 'delete', 'dev', '--force')
    assert 'nope' in fails(repo_dir, 'branch', 'delete', 'nope')
    assert 'dev' not in ok(repo_dir, 'branch', 'list')


def test_commands_outside_a_repository_say_how_to_init(tmp_path: Path) -> None:
    for args in (('status',), ('log',), ('verify',), ('commit', '-m', 'x')):
        assert 'init' in fails(tmp_path, *args)


def test_init_twice_refuses_and_names_the_flag(repo_dir: Path) -> None:
    assert '--remove-old' in fails(repo_dir, 'init', '--name', 'A', '--email', 'a@b')
    ok(repo_dir, 'init', '--name', 'A', '--email', 'a@b', '--remove-old')


def test_bad_input_exits_1_names_the_problem_and_changes_nothing(
    tmp_path: Path, repo_dir: Path, images_dir: tuple[Path, dict[str, bytes]]
) -> None:
    src, _ = images_dir
    ok(repo_dir, 'column', 'create', 'images', 'uint8', '4', '5')
    ok(repo_dir, 'import', 'images', str(src), '-m', 'base')
    before = ok(repo_dir, 'summary', '--json'), ok(repo_dir, 'log')

    assert 'nothing staged' in fails(repo_dir, 'commit', '-m', 'empty')
    assert 'already exists' in fails(repo_dir, 'column', 'create', 'images', 'uint8', '4', '5')
    assert 'give the sample shape' in fails(repo_dir, 'column', 'create', 'masks', 'uint8')
    assert 'column create masks' in fails(repo_dir, 'import', 'masks', str(src))
    assert 'nope' in fails(repo_dir, 'export', 'images', 'nope', '-o', str(tmp_path / 'x'))

    bad = tmp_path / 'bad'
    bad.mkdir()
    for i in range(3):  # good files first: a bad one later must still stage none of them
        save_npy(bad / f'{100 + i}.npy', np.ones((4, 5), np.uint8))
    cases = {
        '200.npy': (save_npy, np.ones((4, 6), np.uint8), 'expected shape (4, 5), got (4, 6)'),
        '201.npy': (save_npy, np.ones((4, 5), np.float32), 'expected dtype uint8, got float32'),
        '202.npy': (None, b'\x93NUMPY\x01\x00', 'header is truncated'),
        '203.npy': (None, b'not an npy file at all', 'not a .npy file'),
        '204.npy': (None, 'truncated-body', 'truncated'),
        'a b.npy': (save_npy, np.ones((4, 5), np.uint8), 'a b'),
    }
    for name, (how, content, reason) in cases.items():
        path = bad / name
        if how is not None:
            how(path, content)
        elif content == 'truncated-body':
            path.write_bytes(save_npy(path, np.ones((4, 5), np.uint8))[:-3])
        else:
            path.write_bytes(content)  # type: ignore[arg-type]
        line = fails(repo_dir, 'import', 'images', str(bad))
        assert reason in line and name in line, line
        assert 'Nothing staged.' in ok(repo_dir, 'status'), name
        path.unlink()
    assert (ok(repo_dir, 'summary', '--json'), ok(repo_dir, 'log')) == before
    assert 'no problems' in ok(repo_dir, 'verify')


def test_verify_reports_a_corrupted_sample(repo_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / 'vols'
    src.mkdir()
    for i in range(20):  # 1.3 MB: enough to go to a collection file at once
        np.save(src / f'{i}.npy', np.random.default_rng(i).random((128, 128), dtype=np.float32))
    ok(repo_dir, 'column', 'create', 'vols', 'float32', '128', '128', '--backend', 'hdf5')
    ok(repo_dir, 'import', 'vols', str(src), '-m', 'volumes')
    (path,) = (repo_dir / '.hangarfs' / 'data' / '00').glob('*.h5')
    with h5py.File(path, 'r', locking=False) as f:
        info = f['heap'].id.get_chunk_info(0)
    flip_byte(path, info.byte_offset + info.size // 2)  # inside the first chunk
    proc = run_hangarfs('-C', str(repo_dir), 'verify')
    assert proc.returncode == 1
    assert "column 'vols'" in proc.stdout and 'checksum mismatch' in proc.stdout, proc.stdout
    line = fails(repo_dir, 'export', 'vols', '-o', str(tmp_path / 'out'))
    assert 'checksum mismatch' in line
