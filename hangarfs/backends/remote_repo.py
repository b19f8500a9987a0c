"""A hangarfs remote: the layout of a repository on an object store, and the operations on it.

This layer knows bytes keyed by 32-byte digests and a document of named refs; it knows nothing of
commits' contents, trees or columns (the engine's push/fetch/clone build on it). Layout below the
remote's URL::

    config                 format version + feature flags (JSON), written once, create-only
    refs                   THE mutable object: all branches and tags, moved by compare-and-swap
    refs-log/<10^12-gen>.<write_id>      every replaced version of refs (newest first when listed)
    commits/<hex id>       commit objects, immutable
    meta/<pack name>       packs of metadata blobs (tree nodes, schemas): what a clone downloads
    data/<group>/<pack name>             packs of sample blobs, one group (column) per pack
    index/<index name>     partial index files: digest -> (pack, offset, length, checksum)

Pack and index names are the blake2b-256 of their bytes. No fan-out directories: S3 partitions a
prefix by the characters that follow it, and hash names spread evenly there already.

**The commit protocol is the write order**: data packs -> index -> meta packs (+ their index) ->
commit objects -> compare-and-swap of ``refs``. Each step only names what earlier steps finished,
so an upload killed at any instant leaves a remote whose refs, commits and indexes are complete and
consistent; the next upload skips every digest an index names, and ``recover_orphans`` indexes the
packs that arrived after the last index.

API (phase 2 builds push/fetch/clone/fetch_data and the lazy mount on it)::

    remote = open_remote(url, create=False, cache_dir=None, **store_options)
    snap = remote.read_refs()                       # RefsSnapshot: branches, tags, generation
    remote.update_refs(snap, branches={...}, tags={...}, message='push master')  # RemoteRefMoved
    index = remote.known_digests()                  # RemoteIndex: one LIST + index reads (cached)
    index.missing(digests) / index.lookup(d) / index.tables_for(digests) / index.group_tables(g)
    remote.write_data_packs('images', blobs)        # (digest, bytes) -> packs + index; UploadReport
    remote.write_meta_packs(blobs)                  # the same for tree nodes and schemas
    remote.put_commit(commit_id_hex, body)          # after the packs it needs
    remote.get_commits(ids) / remote.list_commits()
    remote.read_blobs(digests) / remote.read_group('images') / remote.read_meta()
                                                    # -> (digest, bytes) checked, in parallel
    remote.read_batches(index.group_tables('images'))   # the bulk form: a BlobBatch per pack
    remote.recover_orphans(); remote.fsck()         # see remote_fsck
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hangarfs.backends.objstore import ObjectStore, RetryPolicy, open_object_store
from hangarfs.backends.pack_reads import BlobBatch, read_pack_blobs
from hangarfs.backends.packs import (
    DEFAULT_MAX_GAP,
    DEFAULT_MAX_REQUEST,
    DEFAULT_PACK_SIZE,
    SealedPack,
    read_pack_footer,
)
from hangarfs.backends.remote_index import IndexFile, PackInfo, RemoteIndex, index_name, parse_index
from hangarfs.backends.remote_refs import RefsSnapshot, read_refs, read_refs_log, update_refs
from hangarfs.backends.remote_upload import (
    INDEX_PREFIX,
    UploadReport,
    put_immutable,
    upload_blobs,
    write_index,
)
from hangarfs.errors_remote import (
    RemoteBlobMissing,
    RemoteCorrupt,
    RemoteFormatError,
    RemoteNotARepository,
    RemoteObjectExists,
    RemoteObjectNotFound,
)

if TYPE_CHECKING:
    from hangarfs.backends.remote_fsck import FsckReport

FORMAT_NAME = 'hangarfs-remote'
FORMAT_VERSION = 1
#: Mandatory features this version understands; a remote that needs another one is refused.
KNOWN_FEATURES: frozenset[str] = frozenset()
CONFIG_KEY = 'config'
COMMITS_PREFIX = 'commits/'
META_PREFIX = 'meta/'
DATA_PREFIX = 'data/'
META_GROUP = 'meta'


_GROUP_RE = re.compile(r'[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,254}\Z')


def _check_group(group: str) -> str:
    """A group becomes a path segment: the alphabet of column names, and not ``meta``."""
    if not isinstance(group, str) or not _GROUP_RE.match(group):
        raise ValueError(
            f'expected a group name of [A-Za-z0-9._-] not starting with ".", got {group!r} instead'
        )
    return group


@dataclass(frozen=True)
class RemoteConfig:
    """The ``config`` object: format version, mandatory and optional features, identity."""

    version: int = FORMAT_VERSION
    repository_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str = field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
    )
    features: tuple[str, ...] = ()
    optional_features: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        doc = {
            'format': FORMAT_NAME,
            'version': self.version,
            'repository_id': self.repository_id,
            'created_at': self.created_at,
            'features': list(self.features),
            'optional_features': list(self.optional_features),
        }
        return json.dumps(doc, indent=1, sort_keys=True).encode() + b'\n'

    @classmethod
    def from_bytes(cls, raw: bytes, url: str) -> RemoteConfig:
        try:
            doc = json.loads(raw)
        except ValueError as err:
            raise RemoteNotARepository(
                url, f'{url}/{CONFIG_KEY} is not a hangarfs remote config (not JSON): is the URL right?'
            ) from err
        if not isinstance(doc, dict) or doc.get('format') != FORMAT_NAME:
            raise RemoteNotARepository(
                url, f'{url}/{CONFIG_KEY} is not a hangarfs remote config (no "format": "{FORMAT_NAME}")'
            )
        try:
            config = cls(
                version=int(doc['version']),
                repository_id=str(doc['repository_id']),
                created_at=str(doc.get('created_at', '')),
                features=tuple(str(f) for f in doc.get('features', ())),
                optional_features=tuple(str(f) for f in doc.get('optional_features', ())),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise RemoteFormatError(url, f'{url}/{CONFIG_KEY} is damaged ({err})') from err
        if config.version > FORMAT_VERSION:
            raise RemoteFormatError(
                url,
                f'{url} is a hangarfs remote of format version {config.version}; this hangarfs reads '
                f'version {FORMAT_VERSION} at most: upgrade hangarfs (pip install -U hangarfs)',
            )
        unknown = sorted(set(config.features) - KNOWN_FEATURES)
        if unknown:
            raise RemoteFormatError(
                url,
                f'{url} needs features this hangarfs does not have ({", ".join(unknown)}): upgrade hangarfs',
            )
        return config


def open_remote(
    url: str,
    *,
    create: bool = False,
    cache_dir: str | Path | None = None,
    pack_size: int = DEFAULT_PACK_SIZE,
    retry: RetryPolicy | None = None,
    unsafe_single_writer: bool = False,
    **store_options: Any,
) -> RemoteRepo:
    """Open the hangarfs remote at ``url``; with ``create``, make one there if the location is empty.

    Raises RemoteNotARepository for a URL with no hangarfs remote (naming what is there instead),
    RemoteFormatError for a newer format, RemoteAccessDenied / RemoteUnreachable as the store does.
    """
    store = open_object_store(
        url, create=create, retry=retry, unsafe_single_writer=unsafe_single_writer, **store_options
    )
    try:
        config = _read_or_create_config(store, create)
    except BaseException:
        store.close()
        raise
    return RemoteRepo(store, config, cache_dir=cache_dir, pack_size=pack_size)


def _read_or_create_config(store: ObjectStore, create: bool) -> RemoteConfig:
    try:
        return RemoteConfig.from_bytes(store.get(CONFIG_KEY), store.url)
    except RemoteObjectNotFound as err:
        missing = err
    try:
        others = store.list('', limit=1)
    except RemoteObjectNotFound:
        others = []
    if others:
        raise RemoteNotARepository(
            store.url,
            f'{store.url} is not a hangarfs remote: it holds objects (such as {others[0].key!r}) but no '
            f'{CONFIG_KEY!r} object. Check the URL, or pick an empty location for a new remote',
        ) from missing
    if not create:
        why = missing.detail or f'it has no {CONFIG_KEY!r} object'
        raise RemoteNotARepository(
            store.url, f'no hangarfs remote at {store.url}: {why}; push to it to create one'
        ) from missing
    config = RemoteConfig()
    try:
        if store.capabilities.conditional_create or store.unsafe_single_writer:
            store.put_create(CONFIG_KEY, config.to_bytes())
        else:
            store.put(CONFIG_KEY, config.to_bytes())
    except RemoteObjectExists:  # created meanwhile by someone else: use theirs
        return RemoteConfig.from_bytes(store.get(CONFIG_KEY), store.url)
    return config


class RemoteRepo:
    """One open remote; see the module docstring. Thread-safe for reads; one upload at a time."""

    def __init__(
        self,
        store: ObjectStore,
        config: RemoteConfig,
        *,
        cache_dir: str | Path | None = None,
        pack_size: int = DEFAULT_PACK_SIZE,
        concurrency: int = 4,
    ) -> None:
        self.store = store
        self.config = config
        self.url = store.url
        self.pack_size = pack_size
        self.concurrency = concurrency
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._index_files: dict[str, IndexFile] = {}
        self._index: RemoteIndex | None = None
        self._index_lock = threading.RLock()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> RemoteRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ refs

    def read_refs(self) -> RefsSnapshot:
        return read_refs(self.store)

    def update_refs(
        self,
        expected: RefsSnapshot,
        *,
        branches: Mapping[str, str],
        tags: Mapping[str, str],
        message: str = '',
    ) -> RefsSnapshot:
        """Compare-and-swap of all refs; RemoteRefMoved if they changed since ``expected`` was read."""
        return update_refs(self.store, expected, branches=branches, tags=tags, message=message)

    def refs_log(self, limit: int | None = None) -> list[RefsSnapshot]:
        return read_refs_log(self.store, limit)

    # ------------------------------------------------------------------ what the remote holds

    def known_digests(self, *, refresh: bool = False) -> RemoteIndex:
        """Every blob the remote's index files name: one LIST of ``index/`` plus one GET per index
        file not read (or cached in ``cache_dir``) before."""
        with self._index_lock:
            if self._index is not None and not refresh:
                return self._index
            listed = {info.key for info in self.store.list(INDEX_PREFIX)}
            new = sorted(listed - set(self._index_files))
            for key, parsed in zip(new, self.parallel_map(self._load_index, new)):
                self._index_files[key] = parsed
            for gone in set(self._index_files) - listed:
                del self._index_files[gone]
            self._index = RemoteIndex(self._index_files)
            return self._index

    def _load_index(self, key: str) -> IndexFile:
        name = key[len(INDEX_PREFIX) :]
        cached = self.cache_dir / 'index' / name if self.cache_dir is not None else None
        if cached is not None and cached.is_file():
            data = cached.read_bytes()
            if index_name(data) == name:
                return parse_index(data, str(cached), name)
        data = self.store.get(key)
        parsed = parse_index(data, self.store.object_url(key), name)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix('.tmp')
            tmp.write_bytes(data)
            tmp.replace(cached)
        return parsed

    def _add_index(self, key: str, parsed: IndexFile) -> None:
        with self._index_lock:
            self._index_files[key] = parsed
            self._index = None  # merged again on the next known_digests()

    # ------------------------------------------------------------------ writes

    def write_data_packs(
        self,
        group: str,
        blobs: Iterable[tuple[bytes, bytes | memoryview]],
        *,
        index_every: int = 16,
        progress: Callable[[int], None] | None = None,
    ) -> UploadReport:
        """Upload the blobs the remote lacks as packs of ``group`` (a column), then index them."""
        _check_group(group)
        return self._upload(group, lambda p: f'{DATA_PREFIX}{group}/{p.name}', blobs, index_every, progress)

    def write_meta_packs(
        self,
        blobs: Iterable[tuple[bytes, bytes | memoryview]],
        *,
        index_every: int = 16,
        progress: Callable[[int], None] | None = None,
    ) -> UploadReport:
        """Upload metadata blobs (tree nodes, schemas) the remote lacks as ``meta/`` packs."""
        return self._upload(META_GROUP, lambda p: f'{META_PREFIX}{p.name}', blobs, index_every, progress)

    def _upload(
        self,
        group: str,
        key_of: Callable[[SealedPack], str],
        blobs: Iterable[tuple[bytes, bytes | memoryview]],
        index_every: int,
        progress: Callable[[int], None] | None,
    ) -> UploadReport:
        known = self.known_digests()
        return upload_blobs(
            self.store,
            key_of,
            group,
            blobs,
            missing=known.missing,
            on_index=self._add_index,
            pack_size=self.pack_size,
            index_every=index_every,
            concurrency=self.concurrency,
            progress=progress,
        )

    def put_commit(self, commit_id: str, body: bytes) -> None:
        """Store a commit object (immutable; storing it again is a no-op). Write it only after the
        packs it needs are indexed, and before the refs name it."""
        put_immutable(self.store, COMMITS_PREFIX + _check_id(commit_id), body)

    # ------------------------------------------------------------------ reads

    def has_commit(self, commit_id: str) -> bool:
        return self.store.exists(COMMITS_PREFIX + _check_id(commit_id))

    def get_commit(self, commit_id: str) -> bytes:
        return self.store.get(COMMITS_PREFIX + _check_id(commit_id))

    def get_commits(self, commit_ids: Iterable[str]) -> dict[str, bytes]:
        """Several commit objects, fetched in parallel."""
        ids = list(commit_ids)
        return dict(zip(ids, self.parallel_map(self.get_commit, ids)))

    def list_commits(self) -> list[str]:
        return [info.key[len(COMMITS_PREFIX) :] for info in self.store.list(COMMITS_PREFIX)]

    def read_blobs(
        self, digests: Iterable[bytes], *, max_gap: int = DEFAULT_MAX_GAP
    ) -> Iterator[tuple[bytes, memoryview]]:
        """``(digest, stored bytes)`` for each digest (pack by pack, not in the order given), every
        blob checked before it is returned. RemoteBlobMissing for a digest no index names."""
        index = self.known_digests()
        wanted = list(digests)
        absent = index.missing(wanted)
        if absent:
            raise RemoteBlobMissing(self.url, absent[0])
        tables = index.tables_for(wanted)
        return self.read_tables(tables.items(), max_gap=max_gap)

    def read_group(self, group: str, *, max_gap: int = DEFAULT_MAX_GAP) -> Iterator[tuple[bytes, memoryview]]:
        """Every blob of ``group`` (a whole column): one range read per pack."""
        return self.read_tables(self.known_digests().group_tables(group), max_gap=max_gap)

    def read_meta(self) -> Iterator[tuple[bytes, memoryview]]:
        """Every metadata blob (what a clone downloads)."""
        return self.read_group(META_GROUP)

    def read_tables(
        self,
        tables: Iterable[tuple[str, np.ndarray]],
        *,
        max_gap: int = DEFAULT_MAX_GAP,
        max_request: int = DEFAULT_MAX_REQUEST,
    ) -> Iterator[tuple[bytes, memoryview]]:
        """The blobs of ``(pack key, table of entries)`` pairs, one by one (see ``read_batches``)."""
        for batch in self.read_batches(tables, max_gap=max_gap, max_request=max_request):
            yield from batch

    def read_batches(
        self,
        tables: Iterable[tuple[str, np.ndarray]],
        *,
        max_gap: int = DEFAULT_MAX_GAP,
        max_request: int = DEFAULT_MAX_REQUEST,
    ) -> Iterator[BlobBatch]:
        """The checked blobs of ``(pack key, table of entries)`` pairs (from ``RemoteIndex``'s
        ``group_tables`` or ``tables_for``), a batch per pack, ``concurrency`` packs in flight: the
        bulk path (no Python object per blob beyond its bytes)."""

        packs = self.known_digests().packs

        def one(item: tuple[str, np.ndarray]) -> BlobBatch:
            key, table = item
            size = packs[key].size if key in packs else None
            return read_pack_blobs(
                self.store, key, table, size=size, max_gap=max_gap, max_request=max_request
            )

        yield from self.parallel_map(one, tables)

    # ------------------------------------------------------------------ recovery

    def recover_orphans(self) -> list[PackInfo]:
        """Index the packs no index names (left by an interrupted upload) from their footers: one
        LIST of ``data/`` and ``meta/``, and one or two range reads per orphan. Damaged orphans are
        left alone (fsck reports them)."""
        index = self.known_digests(refresh=True)
        orphans = [
            info
            for prefix in (DATA_PREFIX, META_PREFIX)
            for info in self.store.list(prefix)
            if info.key not in index.packs
        ]
        found: list[tuple[PackInfo, np.ndarray]] = []
        for info in orphans:
            try:
                footer = read_pack_footer(self.store, info.key, info.size)
                group, table = footer.group, footer.table
            except RemoteCorrupt:
                continue
            expected_key = f'{DATA_PREFIX}{group}/' if info.key.startswith(DATA_PREFIX) else META_PREFIX
            if info.key.rsplit('/', 1)[0] + '/' == expected_key:
                found.append((PackInfo(info.key, group, info.size), table))
        if found:
            key, parsed = write_index(self.store, found)
            self._add_index(key, parsed)
        return [p for p, _ in found]

    def fsck(
        self,
        *,
        progress: Callable[[int], None] | None = None,
        verify_commit: Callable[[str, bytes], bool] | None = None,
        check_pack: Callable[[str, bytes, np.ndarray], list[str]] | None = None,
    ) -> FsckReport:
        """Read and check everything the remote holds (every pack hashed); see ``remote_fsck``."""
        from hangarfs.backends.remote_fsck import fsck_remote

        return fsck_remote(self, progress=progress, verify_commit=verify_commit, check_pack=check_pack)

    # ------------------------------------------------------------------ helpers

    def parallel_map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """``map(fn, items)`` with up to ``concurrency`` calls in flight, results in order."""
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix='hangarfs-remote') as pool:
            window: deque[Future[Any]] = deque()
            try:
                for item in items:
                    window.append(pool.submit(fn, item))
                    if len(window) >= self.concurrency:
                        yield window.popleft().result()
                while window:
                    yield window.popleft().result()
            finally:
                for f in window:
                    f.cancel()

    def __repr__(self) -> str:
        return f'RemoteRepo({self.url!r})'


def _check_id(commit_id: str) -> str:
    if not commit_id or not all(c in '0123456789abcdef' for c in commit_id):
        raise ValueError(f'expected a commit id in lower-case hex, got {commit_id!r} instead')
    return commit_id
