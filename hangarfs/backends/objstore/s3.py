"""S3 and S3-compatible object storage through obstore (the Rust ``object_store`` crate).

Why obstore rather than s3fs (measured on this machine, ``scripts/bench/remote_transport.py``, and
in ``../shared/probes/s3_cas_probe.py``):

- conditional writes are typed: ``mode='create'`` raises ``AlreadyExistsError``, ``mode={'e_tag': ..}``
  raises ``PreconditionError`` and returns the new ETag. s3fs has no update mode; a stale ``IfMatch=``
  passed through to ``put_object`` comes back as ``OSError(EINVAL)``, like many other 400-class answers;
- its retries can be switched off, so that this layer alone decides what to retry: a conditional PUT
  retried after a lost answer would report the caller's own landed write as a conflict;
- it moves bytes without the GIL and with less overhead per request (the benchmark prints both).

Credentials are resolved here, before any request, so that a machine without them fails at once
with a message listing the ways to give them, instead of probing the EC2 metadata service:
options (``access_key_id``, ``secret_access_key``, ``session_token``), then ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, then the profile (``profile=`` or ``AWS_PROFILE``,
default ``default``) in ``~/.aws/credentials`` (``AWS_SHARED_CREDENTIALS_FILE``). ``anonymous=True``
sends unsigned requests (public buckets); ``instance_credentials=True`` lets obstore use the
EC2/ECS/web-identity providers. The endpoint is ``endpoint_url=`` or ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL`` (path-style requests then, as MinIO, moto and Ceph expect); the region
``region=`` or ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` or the profile's, else ``us-east-1``.

obstore reports transport failures as a ``GenericError`` whose text carries reqwest's debug output;
``classify`` reads the HTTP status, the S3 error code and the transport kind from it (pinned to
obstore 0.12 in pyproject.toml; the tests exercise every branch against a real server).
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn, cast

from hangarfs.backends.objstore.base import (
    Capabilities,
    Chunk,
    ObjectInfo,
    ObjectStore,
    Payload,
    PutMode,
    Range,
    RetryPolicy,
    TransientError,
)
from hangarfs.errors_remote import (
    RemoteAccessDenied,
    RemoteObjectExists,
    RemoteObjectNotFound,
    RemotePreconditionFailed,
    RemoteRequestError,
)

_STATUS = re.compile(r'status code: (\d{3})')
_S3_CODE = re.compile(r'<Code>([A-Za-z]+)</Code>')
_KIND = re.compile(r'kind: (Connect|Timeout|Request|Body|Decode|Redirect|Status|Builder)')
_OS_MESSAGE = re.compile(r'message: "([^"]+)"')
_RETRYABLE_CONFLICTS = {'ConditionalRequestConflict', 'ConcurrentModification', 'OperationAborted'}


def _import_obstore() -> Any:
    try:
        import obstore
    except ImportError as err:  # pragma: no cover (installed by the remote extra)
        raise ImportError(
            "S3 remotes need obstore: pip install 'hangarfs[remote]' (or pip install obstore)"
        ) from err
    return obstore


def _profile_credentials(profile: str) -> dict[str, str]:
    """Keys and region of ``profile`` from the shared AWS files; {} when there is none."""
    out: dict[str, str] = {}
    cred_file = Path(os.environ.get('AWS_SHARED_CREDENTIALS_FILE', '~/.aws/credentials')).expanduser()
    conf_file = Path(os.environ.get('AWS_CONFIG_FILE', '~/.aws/config')).expanduser()
    for path, section in (
        (cred_file, profile),
        (conf_file, profile if profile == 'default' else f'profile {profile}'),
    ):
        parser = configparser.ConfigParser()
        with contextlib.suppress(OSError, configparser.Error):
            parser.read(path)
            if parser.has_section(section):
                sec = parser[section]
                for ours, theirs in (
                    ('access_key_id', 'aws_access_key_id'),
                    ('secret_access_key', 'aws_secret_access_key'),
                    ('session_token', 'aws_session_token'),
                    ('region', 'region'),
                    ('endpoint_url', 'endpoint_url'),
                ):
                    if sec.get(theirs):
                        out.setdefault(ours, sec[theirs])
    return out


def resolve_s3_config(url: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The obstore configuration for ``url``, or RemoteAccessDenied when there are no credentials."""
    env = os.environ
    profile_name = options.get('profile') or env.get('AWS_PROFILE') or 'default'
    profile = _profile_credentials(profile_name)
    config: dict[str, Any] = {}
    endpoint = (
        options.get('endpoint_url')
        or env.get('AWS_ENDPOINT_URL_S3')
        or env.get('AWS_ENDPOINT_URL')
        or profile.get('endpoint_url')
    )
    if endpoint:
        config['endpoint'] = endpoint
        config['virtual_hosted_style_request'] = False
    config['region'] = (
        options.get('region')
        or env.get('AWS_REGION')
        or env.get('AWS_DEFAULT_REGION')
        or profile.get('region')
        or 'us-east-1'
    )
    if options.get('anonymous'):
        config['skip_signature'] = True
        return config
    key_id = options.get('access_key_id') or env.get('AWS_ACCESS_KEY_ID')
    secret = options.get('secret_access_key') or env.get('AWS_SECRET_ACCESS_KEY')
    token = options.get('session_token') or env.get('AWS_SESSION_TOKEN')
    if not (key_id and secret) and profile.get('access_key_id') and profile.get('secret_access_key'):
        key_id, secret, token = (
            profile['access_key_id'],
            profile['secret_access_key'],
            profile.get('session_token'),
        )
    if key_id and secret:
        config['access_key_id'] = key_id
        config['secret_access_key'] = secret
        if token:
            config['session_token'] = token
        return config
    if (
        options.get('instance_credentials')
        or env.get('AWS_WEB_IDENTITY_TOKEN_FILE')
        or env.get('AWS_CONTAINER_CREDENTIALS_RELATIVE_URI')
        or env.get('AWS_CONTAINER_CREDENTIALS_FULL_URI')
    ):
        return config  # obstore's own providers take it from here
    raise RemoteAccessDenied(
        url,
        f'no S3 credentials for {url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in '
        f'~/.aws/credentials (AWS_PROFILE; looked for {profile_name!r}), or pass access_key_id= and '
        'secret_access_key=; anonymous=True reads a public bucket, instance_credentials=True uses the '
        'EC2/ECS role',
    )


def classify(
    err: BaseException,
    url: str,
    *,
    endpoint: str = 'S3',
    conditional: PutMode | None = None,
    expected: str | None = None,
) -> NoReturn:
    """Raise the hangarfs error (or TransientError) that an obstore exception means."""
    obstore = _import_obstore()
    exc = obstore.exceptions
    text = str(err)
    status_m = _STATUS.search(text)
    status = int(status_m.group(1)) if status_m else None
    code_m = _S3_CODE.search(text)
    code = code_m.group(1) if code_m else None
    first = text.split('\n', 1)[0]
    if code == 'NoSuchBucket':
        bucket = url.split('://', 1)[-1].split('/', 1)[0]
        raise RemoteObjectNotFound(url, f'the bucket {bucket!r} does not exist at {endpoint}') from err
    if isinstance(err, exc.AlreadyExistsError):
        raise RemoteObjectExists(url) from err
    if isinstance(err, exc.PreconditionError) or status == 412:
        if conditional is PutMode.CREATE:
            raise RemoteObjectExists(url) from err
        raise RemotePreconditionFailed(url, expected) from err
    if isinstance(err, FileNotFoundError) or status == 404:
        raise RemoteObjectNotFound(url) from err
    if isinstance(err, exc.PermissionDeniedError | exc.UnauthenticatedError) or status in (401, 403):
        raise RemoteAccessDenied(
            url, f'{url}: access denied ({code or status}): check the credentials and the bucket policy'
        ) from err
    if status == 409 and code in _RETRYABLE_CONFLICTS:
        raise TransientError(f'{code} (409): a concurrent write was in progress', ambiguous=False) from err
    if status is not None and (status >= 500 or status == 429):
        raise TransientError(f'{endpoint} answered {status} {code or ""}'.strip(), ambiguous=True) from err
    if status is not None:
        raise RemoteRequestError(
            url, f'{url}: the server refused the request: {status} {code or ""} ({first})'
        ) from err
    kind_m = _KIND.search(text)
    kind = kind_m.group(1) if kind_m else None
    os_m = _OS_MESSAGE.search(text)
    cause = (
        os_m.group(1).lower()
        if os_m
        else {'Timeout': 'timed out', 'Connect': 'cannot connect'}.get(kind or '', first)
    )
    if isinstance(err, exc.GenericError) and kind is not None:
        raise TransientError(f'{cause} at {endpoint}', ambiguous=kind != 'Connect') from err
    raise RemoteRequestError(url, f'{url}: {type(err).__name__}: {first}') from err


class S3ObjectStore(ObjectStore):
    capabilities = Capabilities(
        conditional_create=True,
        conditional_update=True,
        description='S3 conditional writes (If-None-Match: *, If-Match: ETag)',
    )

    def __init__(
        self,
        url: str,
        *,
        retry: RetryPolicy | None = None,
        unsafe_single_writer: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(url, retry=retry, unsafe_single_writer=unsafe_single_writer)
        known = {
            'endpoint_url',
            'region',
            'access_key_id',
            'secret_access_key',
            'session_token',
            'profile',
            'anonymous',
            'instance_credentials',
            'max_concurrency',
        }
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f'unknown S3 option(s) {unknown}; expected some of {sorted(known)}')
        obstore = _import_obstore()
        from obstore.store import S3Store

        rest = url.split('://', 1)[1]
        bucket, _, prefix = rest.partition('/')
        if not bucket:
            raise ValueError(f'expected s3://BUCKET/PREFIX, got {url!r} instead')
        config = resolve_s3_config(self.url, options)
        client: Any = {
            'connect_timeout': timedelta(seconds=self.retry.connect_timeout),
            'read_timeout': timedelta(seconds=self.retry.read_timeout),
            'timeout': timedelta(hours=1),
            'allow_http': str(config.get('endpoint', '')).startswith('http://'),
        }
        self.endpoint = str(config.get('endpoint') or f'AWS S3 in {config["region"]}')
        self.max_concurrency = int(options.get('max_concurrency', 8))
        self._obstore = obstore
        self._store = S3Store(
            bucket,
            prefix=prefix.strip('/') or None,
            config=cast(Any, config),
            client_options=client,
            retry_config={'max_retries': 0},
        )

    @contextlib.contextmanager
    def _calls(self, key: str, mode: PutMode | None = None, expected: str | None = None) -> Iterator[None]:
        try:
            yield
        except (TransientError, RemoteObjectNotFound, RemoteObjectExists, RemotePreconditionFailed):
            raise
        except Exception as err:
            if isinstance(err, self._obstore.exceptions.BaseError | FileNotFoundError):
                classify(
                    err, self.object_url(key), endpoint=self.endpoint, conditional=mode, expected=expected
                )
            raise

    def _get(self, key: str) -> tuple[bytes, str | None]:
        with self._calls(key):
            result = self._obstore.get(self._store, key)
            data = bytes(result.bytes())
            return data, result.meta.get('e_tag')

    def _get_ranges(self, key: str, ranges: Sequence[Range]) -> list[Chunk]:
        try:
            with self._calls(key):
                out = self._obstore.get_ranges(
                    self._store, key, starts=[r[0] for r in ranges], ends=[r[1] for r in ranges], coalesce=0
                )
                return [memoryview(b) for b in out]  # zero-copy views of obstore's buffers
        except RemoteRequestError as err:
            if ' 416 ' not in str(err):
                raise
        # a range past the end (a truncated object): clip to the size, as a file read would
        size = self._head(key).size
        clipped = [(min(a, size), min(b, size)) for a, b in ranges]
        wanted = [r for r in clipped if r[0] < r[1]]
        parts = iter(self._get_ranges(key, wanted)) if wanted else iter(())
        return [next(parts) if a < b else b'' for a, b in clipped]

    def _head(self, key: str) -> ObjectInfo:
        with self._calls(key):
            meta = self._obstore.head(self._store, key)
            return ObjectInfo(key, int(meta['size']), meta.get('e_tag'))

    def _list(self, prefix: str, limit: int | None) -> list[ObjectInfo]:
        # obstore lists whole path segments: ask for the directory part, filter the rest here
        directory = prefix.rpartition('/')[0]
        out: list[ObjectInfo] = []
        with self._calls(prefix):
            for chunk in self._obstore.list(self._store, directory or None):
                out.extend(
                    ObjectInfo(meta['path'], int(meta['size']), meta.get('e_tag'))
                    for meta in chunk
                    if meta['path'].startswith(prefix)
                )
                if limit is not None and len(out) >= limit:
                    break
        out.sort(key=lambda info: info.key)
        return out

    def _delete(self, key: str) -> None:
        with self._calls(key):
            self._obstore.delete(self._store, key)

    def _put(self, key: str, data: Payload, mode: PutMode, expected: str | None) -> str | None:
        obs_mode: Any = {'e_tag': expected} if mode is PutMode.MATCH else mode.value
        with self._calls(key, mode, expected):
            result = self._obstore.put(
                self._store, key, data, mode=obs_mode, max_concurrency=self.max_concurrency
            )
            etag: str | None = result.get('e_tag')
            return etag
