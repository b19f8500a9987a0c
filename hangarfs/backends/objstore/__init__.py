"""Where a remote's bytes live: object stores behind one small interface (see ``base``).

``open_object_store(url, **options)`` picks the implementation from the URL:

- a path, or ``file://PATH``: ``LocalDirStore`` (a local disk or an NFS mount; atomic renames,
  links and ``flock`` give create-only writes and compare-and-swap);
- ``s3://BUCKET/PREFIX`` (and ``s3a://``): ``S3ObjectStore`` through obstore, with S3 conditional
  writes; options ``endpoint_url``, ``region``, credentials (see ``s3``);
- any other fsspec URL (``memory://``, ``sftp://``, ``gs://`` ...): ``FsspecStore``, which has no
  conditional writes and so needs ``unsafe_single_writer=True`` to update refs.

Every store takes ``retry=RetryPolicy(...)`` (attempts, backoff, timeouts).
"""

from __future__ import annotations

from typing import Any

from hangarfs.backends.objstore.base import (
    Capabilities,
    ObjectInfo,
    ObjectStore,
    RequestStats,
    RetryPolicy,
)
from hangarfs.backends.objstore.local import LocalDirStore


def open_object_store(
    url: str,
    *,
    create: bool = False,
    retry: RetryPolicy | None = None,
    unsafe_single_writer: bool = False,
    **options: Any,
) -> ObjectStore:
    """The object store for ``url``; ``create`` makes a missing local directory (only that)."""
    url = str(url)
    scheme = url.split('://', 1)[0].lower() if '://' in url else ''
    if scheme in ('', 'file'):
        if options:
            raise TypeError(f'unknown option(s) {sorted(options)} for a directory remote')
        path = url[len('file://') :] if scheme == 'file' else url
        return LocalDirStore(path, create=create, retry=retry, unsafe_single_writer=unsafe_single_writer)
    if scheme in ('s3', 's3a'):
        from hangarfs.backends.objstore.s3 import S3ObjectStore

        return S3ObjectStore(url, retry=retry, unsafe_single_writer=unsafe_single_writer, **options)
    from hangarfs.backends.objstore.fsspec_store import FsspecStore

    return FsspecStore(url, retry=retry, unsafe_single_writer=unsafe_single_writer, **options)


__all__ = [
    'Capabilities',
    'LocalDirStore',
    'ObjectInfo',
    'ObjectStore',
    'RequestStats',
    'RetryPolicy',
    'open_object_store',
]
