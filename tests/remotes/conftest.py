"""Fixtures for remotes: a real S3 server (moto in server mode) on 127.0.0.1, and remote URLs.

The moto server is started once per test session on a free port, as s3fs's own tests do, and stopped
at the end; each test gets its own bucket. ``remote_spec`` runs a test against both a local-directory
remote and an S3 remote, through ``open_remote``, the code path users take.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from hangarfs.backends.objstore import RetryPolicy
from hangarfs.backends.remote_repo import RemoteRepo, open_remote
from tests.remotes.helpers import blob_set
from tests.remotes.netfaults import FaultyProxy

__all__ = ['blob_set']

# What the tests give as credentials; moto accepts any.
S3_KEYS = {'access_key_id': 'testing', 'secret_access_key': 'testing'}
#: Fast failures for the tests: a dead endpoint is reported within about a second.
FAST_RETRY = RetryPolicy(
    attempts=3, initial_backoff=0.05, max_backoff=0.2, connect_timeout=1.0, read_timeout=2.0
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


@dataclass
class S3Server:
    endpoint: str
    server: ThreadedMotoServer
    client: Any = field(repr=False)

    def new_bucket(self) -> str:
        name = f'bkt-{uuid.uuid4().hex[:12]}'
        self.client.create_bucket(Bucket=name)
        return name


@pytest.fixture(scope='session')
def s3_server() -> Iterator[S3Server]:
    port = free_port()
    # one log line per request would bury a failing test's report under thousands of them
    logging.getLogger('werkzeug').setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address='127.0.0.1', port=port, verbose=False)
    server.start()
    endpoint = f'http://127.0.0.1:{port}'
    client = boto3.client(
        's3',
        endpoint_url=endpoint,
        region_name='us-east-1',
        aws_access_key_id='testing',
        aws_secret_access_key='testing',
    )
    try:
        yield S3Server(endpoint, server, client)
    finally:
        server.stop()


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[FaultyProxy]:
    """A TCP proxy in front of the S3 server that tests can break (``netfaults``); stopped at the end."""
    port = int(s3_server.endpoint.rsplit(':', 1)[1])
    p = FaultyProxy(port)
    yield p
    p.stop()


@dataclass(frozen=True)
class RemoteSpec:
    """Where a test's remote lives: a URL and the options ``open_remote`` needs for it."""

    kind: str
    url: str
    options: dict[str, Any]

    def open(self, **kw: Any) -> RemoteRepo:
        return open_remote(self.url, **{**self.options, **kw})


@pytest.fixture(params=['local', 's3'])
def remote_spec(request: pytest.FixtureRequest, tmp_path: Path) -> RemoteSpec:
    if request.param == 'local':
        return RemoteSpec('local', str(tmp_path / 'remote'), {'retry': FAST_RETRY})
    server: S3Server = request.getfixturevalue('s3_server')
    bucket = server.new_bucket()
    return RemoteSpec(
        's3', f's3://{bucket}/team/mnist', {'endpoint_url': server.endpoint, 'retry': FAST_RETRY, **S3_KEYS}
    )


@pytest.fixture
def remote(remote_spec: RemoteSpec) -> Iterator[RemoteRepo]:
    r = remote_spec.open(create=True, pack_size=64 * 1024)
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see only the credentials they pass: none from this machine's environment or files."""
    for var in list(os.environ):
        if var.startswith('AWS_'):
            monkeypatch.delenv(var)
    monkeypatch.setenv('AWS_SHARED_CREDENTIALS_FILE', str(tmp_path / 'no-aws-credentials'))
    monkeypatch.setenv('AWS_CONFIG_FILE', str(tmp_path / 'no-aws-config'))


# ------------------------------------------------------------------------------ repositories' remotes


@dataclass(frozen=True)
class RepoRemote:
    """A remote as a repository adds it: URL and the options ``repo.remote.add`` keeps (the S3
    credentials are in the environment, as users give them)."""

    kind: str
    url: str
    options: dict[str, Any]

    def add_to(self, repo: Any, name: str = 'origin') -> None:
        repo.remote.add(name, self.url, **self.options)

    def store_options(self) -> dict[str, Any]:
        """What ``open_remote`` takes for this remote (the credentials come from the environment)."""
        out: dict[str, Any] = {'retry': FAST_RETRY}
        if 'endpoint_url' in self.options:
            out['endpoint_url'] = self.options['endpoint_url']
        return out


#: What a repository's remote keeps for the tests: a dead endpoint is reported within a second.
FAST_OPTIONS = {'retries': 2, 'connect_timeout': 1.0, 'read_timeout': 5.0}


@pytest.fixture(params=['local', 's3'])
def repo_remote(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> RepoRemote:
    """A fresh remote location for repositories, once a directory, once an S3 bucket on moto."""
    if request.param == 'local':
        return RepoRemote('local', str(tmp_path / 'team.remote'), dict(FAST_OPTIONS))
    server: S3Server = request.getfixturevalue('s3_server')
    monkeypatch.setenv('AWS_ACCESS_KEY_ID', 'testing')
    monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', 'testing')
    bucket = server.new_bucket()
    return RepoRemote('s3', f's3://{bucket}/team/mnist', {'endpoint_url': server.endpoint, **FAST_OPTIONS})
