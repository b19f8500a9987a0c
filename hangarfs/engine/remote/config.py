"""The remotes a repository knows: a name -> a URL and its options, kept in the repository's config.

Each remote is one entry ``remote.NAME`` of the history environment's ``config`` table, holding JSON
``{"url": ..., "options": {...}}``. Options are what reaching the store needs and is not secret:
``endpoint_url``, ``region``, ``profile``, ``anonymous`` (S3), ``unsafe_single_writer`` (a store
without conditional writes that only one process pushes to), and the retry policy (``retries``,
``connect_timeout``, ``read_timeout``). Credentials are never stored in the repository: they come
from the environment or the AWS profile files when the remote is opened (see ``backends.objstore.s3``).

A local path is made absolute when added, so the remote is found from any working directory.
Everything the repository caches about a remote (its index files, its metadata packs, the lazy
mounts' sample cache) lives in ``.hangarfs/remotes/NAME/``; every file there is named by the hash of
its bytes or the digest of the sample it holds, so a stale or foreign file is never taken for another.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from hangarfs.backends.objstore import RetryPolicy
from hangarfs.backends.remote_repo import RemoteRepo, open_remote
from hangarfs.engine.keys import check_name
from hangarfs.engine.refs import remote_branch_ref
from hangarfs.engine.store import RepoStore
from hangarfs.errors_remote import RemoteExists, RemoteNotFound

CONFIG_PREFIX = 'remote.'
CACHE_DIR = 'remotes'
#: Options a remote may keep, and their types.
OPTION_TYPES: Mapping[str, type] = {
    'endpoint_url': str,
    'region': str,
    'profile': str,
    'anonymous': bool,
    'instance_credentials': bool,
    'unsafe_single_writer': bool,
    'retries': int,
    'connect_timeout': float,
    'read_timeout': float,
}
SECRET_OPTIONS = ('access_key_id', 'secret_access_key', 'session_token')
_RETRY_OPTIONS = {'retries': 'attempts', 'connect_timeout': 'connect_timeout', 'read_timeout': 'read_timeout'}


class RemoteInfo(NamedTuple):
    """A remote as Hangar lists it: its name and address (the URL)."""

    name: str
    address: str


@dataclass(frozen=True)
class RemoteSettings:
    """A configured remote: name, URL and the options used to open it."""

    name: str
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def info(self) -> RemoteInfo:
        return RemoteInfo(self.name, self.url)

    def retry_policy(self, **overrides: Any) -> RetryPolicy:
        given = {_RETRY_OPTIONS[k]: v for k, v in self.options.items() if k in _RETRY_OPTIONS}
        return RetryPolicy(**{**given, **overrides})

    def store_options(self) -> dict[str, Any]:
        """What ``open_remote`` takes beyond the URL (the retry policy apart)."""
        return {k: v for k, v in self.options.items() if k not in _RETRY_OPTIONS}


def normalize_url(url: str) -> str:
    """A URL as stored: a local path made absolute; ``file://`` and other schemes as given."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(
            f'expected a remote URL (s3://BUCKET/PREFIX, a directory, any fsspec URL), got {url!r}'
        )
    url = url.strip()
    if '://' in url:
        scheme, rest = url.split('://', 1)
        if scheme.lower() == 'file':
            return 'file://' + os.path.abspath(os.path.expanduser(rest))
        return url.rstrip('/')
    return os.path.abspath(os.path.expanduser(url))


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate remote options; credentials are refused (they do not belong in a repository)."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in SECRET_OPTIONS:
            raise ValueError(
                f'{key} is a credential, which a repository does not store: set AWS_ACCESS_KEY_ID / '
                'AWS_SECRET_ACCESS_KEY in the environment, or name a profile of ~/.aws/credentials with '
                'profile='
            )
        kind = OPTION_TYPES.get(key)
        if kind is None:
            raise ValueError(f'unknown remote option {key!r}; expected some of {", ".join(OPTION_TYPES)}')
        if value is None:
            continue
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f'remote option {key}: expected a {kind.__name__}, got {value!r} instead')
        out[key] = value
    if 'retries' in out or 'connect_timeout' in out or 'read_timeout' in out:
        RemoteSettings('', '', out).retry_policy()  # raises on values the policy refuses
    return out


def _key(name: str) -> bytes:
    return f'{CONFIG_PREFIX}{name}'.encode()


def list_remotes(store: RepoStore) -> list[RemoteSettings]:
    """Every configured remote, by name."""
    out = []
    for key, value in store.history_table('config').items(CONFIG_PREFIX.encode()):
        doc = json.loads(value)
        out.append(RemoteSettings(key.decode()[len(CONFIG_PREFIX) :], doc['url'], doc.get('options', {})))
    return sorted(out, key=lambda r: r.name)


def get_remote(store: RepoStore, name: str) -> RemoteSettings:
    """The remote called ``name``; RemoteNotFound names the ones there are."""
    raw = store.history_table('config').get(_key(name)) if isinstance(name, str) and name else None
    if raw is None:
        raise RemoteNotFound(str(name), [r.name for r in list_remotes(store)])
    doc = json.loads(raw)
    return RemoteSettings(name, doc['url'], doc.get('options', {}))


def add_remote(store: RepoStore, name: str, url: str, options: Mapping[str, Any] | None = None) -> RemoteInfo:
    """Record a remote (RemoteExists if the name is taken). Nothing is contacted."""
    check_name(name, 'remote name')
    settings = RemoteSettings(name, normalize_url(url), check_options(options or {}))
    doc = json.dumps({'url': settings.url, 'options': dict(settings.options), 'added': time.time()})
    table = store.history_table('config')
    with store.history.write() as txn:
        existing = table.get(_key(name), txn=txn)
        if existing is not None:
            raise RemoteExists(name, json.loads(existing)['url'])
        table.put(_key(name), doc.encode(), txn=txn)
    return settings.info


def remove_remote(store: RepoStore, name: str) -> RemoteInfo:
    """Forget a remote, its remote-tracking branches and what is cached of it; the remote itself and
    every commit and sample fetched from it stay."""
    settings = get_remote(store, name)
    refs = store.history_table('refs')
    with store.history.write() as txn:
        store.history_table('config').delete(_key(name), txn=txn)
        refs.delete_prefix(remote_branch_ref(f'{name}/').encode(), txn=txn)
    shutil.rmtree(cache_dir(store, name), ignore_errors=True)
    return settings.info


def cache_dir(store: RepoStore, name: str) -> Path:
    """Where the repository caches what it read from remote ``name``."""
    return store.dir / CACHE_DIR / name


def connect(
    store: RepoStore, name: str, *, create: bool = False, retry: RetryPolicy | None = None
) -> RemoteRepo:
    """Open the configured remote ``name`` (``create``: make a hangarfs remote there if the location
    is empty, as a first push does)."""
    settings = get_remote(store, name)
    return open_remote(
        settings.url,
        create=create,
        cache_dir=cache_dir(store, name),
        retry=retry or settings.retry_policy(),
        **settings.store_options(),
    )
