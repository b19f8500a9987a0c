"""Bad input, from Python and from the shell: each fails with an error that says what was wrong and
what to do, fast, and changes nothing."""

from __future__ import annotations

import json
import os
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.errors import ColumnNotFound, InvalidKey, RefNotFound, RepositoryExists
from hangarfs.errors_remote import (
    RemoteAccessDenied,
    RemoteBranchNotFound,
    RemoteExists,
    RemoteFormatError,
    RemoteNotARepository,
    RemoteNotFound,
    RemoteUnreachable,
)
from tests.helpers import hangarfs_fails, hangarfs_ok, new_repository
from tests.remotes.conftest import FAST_OPTIONS, RepoRemote, S3Server, free_port


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    r = new_repository(tmp_path / 'repo')
    with closing(r.checkout(write=True)) as co:
        co.add_ndarray_column('x', shape=(3,), dtype=np.int32)[0] = np.arange(3, dtype=np.int32)
        co.commit('one')
    return r


def test_unknown_remote(repo: Repository) -> None:
    repo.remote.add('origin', str(repo.path) + '.remote')
    for call in (
        lambda: repo.remote.push('upstream', 'master'),
        lambda: repo.remote.fetch('upstream', 'master'),
        lambda: repo.remote.fetch_data('upstream', branch='master'),
        lambda: repo.remote.ping('upstream'),
        lambda: repo.remote.remove('upstream'),
    ):
        with pytest.raises(RemoteNotFound, match=r"no remote named 'upstream' \(remotes here: origin\)"):
            call()
    assert 'hangarfs remote add upstream URL' in hangarfs_fails(Path(repo.path), 'push', 'upstream', 'master')


def test_remote_names_and_options(repo: Repository, tmp_path: Path) -> None:
    repo.remote.add('origin', str(tmp_path / 'r'))
    with pytest.raises(RemoteExists, match='exists already'):
        repo.remote.add('origin', str(tmp_path / 'other'))
    with pytest.raises(InvalidKey):
        repo.remote.add('a/b', str(tmp_path / 'r'))
    with pytest.raises(ValueError, match='credential, which a repository does not store'):
        repo.remote.add('s3', 's3://bkt/x', secret_access_key='hunter2')
    with pytest.raises(ValueError, match="unknown remote option 'colour'"):
        repo.remote.add('s3', 's3://bkt/x', colour='blue')
    with pytest.raises(ValueError, match='expected a int'):
        repo.remote.add('s3', 's3://bkt/x', retries='3')
    assert [r.name for r in repo.remote.list_all()] == ['origin']
    # a relative path is stored absolute, so the remote is found from anywhere
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert repo.remote.add('rel', 'rel.remote').address == str(tmp_path / 'rel.remote')
    finally:
        os.chdir(old)


def test_unreachable_endpoint_fails_fast_naming_url_and_cause(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('AWS_ACCESS_KEY_ID', 'testing')
    monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', 'testing')
    endpoint = f'http://127.0.0.1:{free_port()}'
    repo.remote.add('origin', 's3://bkt/team', endpoint_url=endpoint, **FAST_OPTIONS)
    started = time.monotonic()
    with pytest.raises(RemoteUnreachable, match=r'cannot reach s3://bkt/team/config: connection refused'):
        repo.remote.push('origin', 'master')
    assert time.monotonic() - started < 3
    line = hangarfs_fails(Path(repo.path), 'fetch', 'origin')
    assert 'connection refused' in line and 'gave up after 2 attempt(s)' in line
    target = Path(repo.path).parent / 'clone'
    with pytest.raises(RemoteUnreachable):
        Repository(target, exists=False).clone('B', 'b@example.org', 's3://bkt/team', endpoint_url=endpoint)
    assert not target.exists()  # a failed clone leaves nothing behind


def test_missing_credentials(repo: Repository, s3_server: S3Server) -> None:
    repo.remote.add('origin', f's3://{s3_server.new_bucket()}/x', endpoint_url=s3_server.endpoint)
    with pytest.raises(RemoteAccessDenied, match=r'no S3 credentials .* set AWS_ACCESS_KEY_ID'):
        repo.remote.push('origin', 'master')
    assert 'no S3 credentials' in hangarfs_fails(Path(repo.path), 'remote', 'ping', 'origin')


def test_not_a_hangarfs_remote_and_a_newer_format(repo: Repository, tmp_path: Path) -> None:
    other = tmp_path / 'photos'
    other.mkdir()
    (other / 'cat.jpg').write_bytes(b'\xff\xd8')
    repo.remote.add('photos', str(other))
    with pytest.raises(
        RemoteNotARepository, match=r"not a hangarfs remote: it holds objects \(such as 'cat.jpg'\)"
    ):
        repo.remote.push('photos', 'master')
    assert (other / 'cat.jpg').read_bytes() == b'\xff\xd8' and sorted(os.listdir(other)) == ['cat.jpg']
    with pytest.raises(RemoteNotARepository, match='no hangarfs remote at'):
        Repository(tmp_path / 'c', exists=False).clone('B', 'b@example.org', str(tmp_path / 'nothing'))
    assert not (tmp_path / 'c').exists()

    repo.remote.add('origin', str(tmp_path / 'r'))
    repo.remote.push('origin', 'master')
    config = tmp_path / 'r' / 'config'
    doc = json.loads(config.read_text())
    config.write_text(json.dumps({**doc, 'version': 99}))
    with pytest.raises(RemoteFormatError, match=r'format version 99.*upgrade hangarfs'):
        repo.remote.fetch('origin', 'master')
    line = hangarfs_fails(Path(repo.path), 'clone', str(tmp_path / 'r'), str(tmp_path / 'c2'))
    assert 'upgrade hangarfs' in line


def test_branches_refs_and_arguments(repo: Repository, tmp_path: Path) -> None:
    repo.remote.add('origin', str(tmp_path / 'r'))
    repo.remote.push('origin', 'master')
    with pytest.raises(RemoteBranchNotFound, match=r"has no branch 'relabel'; its branches: master"):
        repo.remote.fetch('origin', 'relabel')
    with pytest.raises(RefNotFound):
        repo.remote.push('origin', 'nope')
    repo.create_branch('empty-later')
    with pytest.raises(ValueError, match='branch= or commit=, not both'):
        repo.remote.fetch_data('origin', branch='master', commit='master')
    with pytest.raises(ColumnNotFound, match="no column named 'y'"):
        repo.remote.fetch_data('origin', branch='master', column_names=['y'])
    with pytest.raises(KeyError, match='has no sample with key 5'):
        repo.remote.fetch_data_sample('origin', 'x', [5], branch='master')
    with pytest.raises(RepositoryExists):
        Repository(repo.path).clone('B', 'b@example.org', str(tmp_path / 'r'))
    out = hangarfs_fails(Path(repo.path), 'fetch-data', 'origin', 'master', '--keys', '-')
    assert 'exactly one -c COLUMN' in out
    assert 'up to date' in hangarfs_ok(Path(repo.path), 'push', 'origin', 'master')


def test_s3_remote_user_errors(repo: Repository, repo_remote: RepoRemote) -> None:
    """The same failures from a configured remote of either kind, through the shell."""
    repo_remote.add_to(repo)
    assert 'pushed master to origin' in hangarfs_ok(Path(repo.path), 'push', 'origin', 'master')
    assert "has no branch 'x'" in hangarfs_fails(Path(repo.path), 'fetch', 'origin', 'x')
    assert 'answered in' in hangarfs_ok(Path(repo.path), 'remote', 'ping', 'origin')
