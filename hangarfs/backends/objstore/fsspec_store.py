"""Any fsspec file system as an object store: the fallback for what has no native store here.

fsspec's generic interface offers no conditional writes, so this store declares none
(``Capabilities(False, False)``): content-addressed objects are written with plain overwrites (the
same name always holds the same bytes, so a repeated write is harmless), while a create-only write or
a compare-and-swap (the refs update) is refused with ``UnsafeRemoteWrite`` unless the store was opened
with ``unsafe_single_writer=True``, which emulates them by read-check-write and is only correct when a
single process writes to the remote at a time. Versions are xxh3-128 hashes of the bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

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
from hangarfs.backends.objstore.local import content_version
from hangarfs.errors_remote import RemoteAccessDenied, RemoteObjectNotFound, RemoteRequestError


class FsspecStore(ObjectStore):
    capabilities = Capabilities(
        conditional_create=False,
        conditional_update=False,
        description='fsspec offers no conditional writes',
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
        try:
            import fsspec
        except ImportError as err:  # pragma: no cover (installed by the remote extra)
            raise ImportError("fsspec remotes need fsspec: pip install 'hangarfs[remote]'") from err
        self.fs, root = fsspec.core.url_to_fs(url, **options)
        self.root = root.rstrip('/')

    def _path(self, key: str) -> str:
        return f'{self.root}/{key}'

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as err:
            raise RemoteObjectNotFound(self.object_url(key)) from err
        except PermissionError as err:
            raise RemoteAccessDenied(
                self.object_url(key), f'{self.object_url(key)}: access denied ({err})'
            ) from err
        except (ConnectionError, TimeoutError) as err:
            raise TransientError(f'{type(err).__name__}: {err}', ambiguous=True) from err
        except (IsADirectoryError, NotADirectoryError, ValueError) as err:
            raise RemoteRequestError(self.object_url(key), f'{self.object_url(key)}: {err}') from err
        except OSError as err:
            raise TransientError(f'{type(err).__name__}: {err}', ambiguous=True) from err

    def _get(self, key: str) -> tuple[bytes, str | None]:
        with self._errors(key):
            data = bytes(self.fs.cat_file(self._path(key)))
        return data, content_version(data)

    def _get_ranges(self, key: str, ranges: Sequence[Range]) -> list[Chunk]:
        with self._errors(key):
            return [bytes(self.fs.cat_file(self._path(key), start=a, end=b)) for a, b in ranges]

    def _head(self, key: str) -> ObjectInfo:
        with self._errors(key):
            info = self.fs.info(self._path(key))
        if info.get('type') == 'directory':
            raise RemoteObjectNotFound(self.object_url(key), 'it is a directory')
        return ObjectInfo(key, int(info['size']), None)

    def _list(self, prefix: str, limit: int | None) -> list[ObjectInfo]:
        directory = prefix.rpartition('/')[0]
        base = self._path(directory) if directory else self.root
        with self._errors(prefix):
            try:
                found = self.fs.find(base, detail=True)
            except FileNotFoundError:
                return []
        out = []
        for path, info in found.items():
            key = path[len(self.root) + 1 :] if path.startswith(self.root + '/') else path.lstrip('/')
            if key.startswith(prefix) and info.get('type') != 'directory':
                out.append(ObjectInfo(key, int(info.get('size') or 0), None))
        out.sort(key=lambda info: info.key)
        return out

    def _delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError), self._errors(key):
            self.fs.rm_file(self._path(key))

    def _put(self, key: str, data: Payload, mode: PutMode, expected: str | None) -> str | None:
        assert mode is PutMode.OVERWRITE, 'conditional writes are emulated by ObjectStore for this store'
        with self._errors(key):
            parent = self._path(key).rpartition('/')[0]
            if parent:
                self.fs.makedirs(parent, exist_ok=True)
            self.fs.pipe_file(self._path(key), bytes(data))
        return content_version(data)
