"""Network and credential failures of S3 remotes: fast, bounded, and named.

Through a TCP proxy on 127.0.0.1 in front of the moto server (``netfaults.FaultyProxy``): the
endpoint going away in the middle of a read (an error naming the URL and the cause after the bounded
retries, never a hang), an endpoint that accepts connections and never answers (the read timeout),
nothing listening at all, and an acknowledgement lost after the server applied a refs update (which
must be reported as success, not as a conflict). Missing credentials fail before any request.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from hangarfs.backends.objstore import RetryPolicy
from hangarfs.backends.remote_repo import open_remote
from hangarfs.errors_remote import RemoteAccessDenied, RemoteRefMoved, RemoteUnreachable
from tests.remotes.conftest import FAST_RETRY, S3_KEYS, S3Server, free_port
from tests.remotes.helpers import blob_set
from tests.remotes.netfaults import FaultyProxy


def test_endpoint_stopped_mid_read_fails_fast_naming_url_and_cause(
    s3_server: S3Server, proxy: FaultyProxy
) -> None:
    url = f's3://{s3_server.new_bucket()}/r'
    remote = open_remote(
        url, create=True, pack_size=32 * 1024, endpoint_url=proxy.endpoint, retry=FAST_RETRY, **S3_KEYS
    )
    blobs = blob_set(200, 1000)
    remote.write_data_packs('images', blobs)
    remote.concurrency = 1
    reader = remote.read_group('images')
    first = next(reader)  # the first pack has arrived
    assert first[0] in dict(blobs)
    proxy.stop()
    started = time.monotonic()
    with pytest.raises(RemoteUnreachable) as err:
        list(reader)
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed
    message = str(err.value)
    assert url in message and 'data/images/' in message
    assert 'connection refused' in message and f'{FAST_RETRY.attempts} attempt(s)' in message
    assert isinstance(err.value, ConnectionError)


def test_an_endpoint_that_never_answers_times_out(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(('127.0.0.1', 0))
        silent.listen(16)
        endpoint = f'http://127.0.0.1:{silent.getsockname()[1]}'
        retry = RetryPolicy(
            attempts=2, initial_backoff=0.05, max_backoff=0.1, connect_timeout=0.5, read_timeout=0.5
        )
        started = time.monotonic()
        with pytest.raises(RemoteUnreachable, match=r'timed out.*2 attempt\(s\)') as err:
            open_remote('s3://bkt/silent', endpoint_url=endpoint, retry=retry, **S3_KEYS)
        assert time.monotonic() - started < 5
        assert 's3://bkt/silent/config' in str(err.value)


def test_nothing_listening_fails_fast() -> None:
    endpoint = f'http://127.0.0.1:{free_port()}'
    started = time.monotonic()
    with pytest.raises(
        RemoteUnreachable, match=r'cannot reach s3://bkt/x/config: connection refused at http://127.0.0.1:'
    ):
        open_remote('s3://bkt/x', endpoint_url=endpoint, retry=FAST_RETRY, **S3_KEYS)
    assert time.monotonic() - started < 3


def test_missing_credentials_fail_before_any_request(tmp_path: Path) -> None:
    # the autouse fixture removed AWS_* variables and points the shared files at nothing; the
    # endpoint is a closed port, so any request would fail differently
    endpoint = f'http://127.0.0.1:{free_port()}'
    with pytest.raises(
        RemoteAccessDenied, match=r'no S3 credentials for s3://bkt/team: set AWS_ACCESS_KEY_ID'
    ) as err:
        open_remote('s3://bkt/team', endpoint_url=endpoint)
    assert isinstance(err.value, PermissionError)
    assert 'anonymous=True' in str(err.value)


def test_credentials_from_a_profile_file(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / 'credentials'
    creds.write_text('[team]\naws_access_key_id = testing\naws_secret_access_key = testing\n')
    monkeypatch.setenv('AWS_SHARED_CREDENTIALS_FILE', str(creds))
    url = f's3://{s3_server.new_bucket()}/r'
    with pytest.raises(RemoteAccessDenied, match="looked for 'default'"):
        open_remote(url, endpoint_url=s3_server.endpoint, create=True)
    monkeypatch.setenv('AWS_PROFILE', 'team')
    remote = open_remote(url, endpoint_url=s3_server.endpoint, create=True)
    assert not remote.read_refs().exists


def test_a_lost_acknowledgement_of_a_refs_update_is_not_a_conflict(
    s3_server: S3Server, proxy: FaultyProxy
) -> None:
    url = f's3://{s3_server.new_bucket()}/r'
    remote = open_remote(url, create=True, endpoint_url=proxy.endpoint, retry=FAST_RETRY, **S3_KEYS)
    s1 = remote.update_refs(remote.read_refs(), branches={'master': 'aa'}, tags={})
    proxy.drop_response_to(b'PUT ', b'/r/refs ')
    s2 = remote.update_refs(s1, branches={'master': 'bb'}, tags={})  # applied; its answer is lost
    assert proxy.dropped == 1
    assert s2.generation == 2 and dict(s2.branches) == {'master': 'bb'}
    assert dict(remote.read_refs().branches) == {'master': 'bb'}
    # a real conflict is still one
    with pytest.raises(RemoteRefMoved):
        remote.update_refs(s1, branches={'master': 'cc'}, tags={})
    # and a lost answer to the first creation too
    other = open_remote(
        f's3://{s3_server.new_bucket()}/r',
        create=True,
        endpoint_url=proxy.endpoint,
        retry=FAST_RETRY,
        **S3_KEYS,
    )
    proxy.drop_response_to(b'PUT ', b'/r/refs ')
    created = other.update_refs(other.read_refs(), branches={'master': 'aa'}, tags={})
    assert proxy.dropped == 2 and created.generation == 1


def test_a_lost_acknowledgement_of_a_pack_upload_is_retried(s3_server: S3Server, proxy: FaultyProxy) -> None:
    url = f's3://{s3_server.new_bucket()}/r'
    remote = open_remote(
        url, create=True, pack_size=32 * 1024, endpoint_url=proxy.endpoint, retry=FAST_RETRY, **S3_KEYS
    )
    proxy.drop_response_to(b'PUT ', b'/r/data/images/')
    blobs = blob_set(100, 1000)
    report = remote.write_data_packs('images', blobs)
    assert proxy.dropped == 1 and report.blobs_written == 100
    assert remote.fsck().ok
