"""The local copy of a remote's metadata packs (tree nodes, snapshots, tag records).

A fetch lists ``meta/`` on the remote and downloads only the packs not here yet (whole, in
parallel), each checked against its name (the blake2b-256 of its bytes) before it is kept, and
written under a temporary name then renamed, so a pack in the cache is always complete. Objects are
then looked up in the packs' footers and every object is checked against its digest when it is
taken: a pack that rotted on disk is never read as valid (it is removed, and the next fetch
downloads it again).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hangarfs.backends.pack_reads import check_records
from hangarfs.backends.packs import RECORD, digests_of, pack_name, parse_footer
from hangarfs.backends.remote_repo import META_PREFIX, RemoteRepo
from hangarfs.engine.records import digest_of
from hangarfs.engine.remote.progress import NO_PROGRESS, Progress
from hangarfs.errors import CorruptData
from hangarfs.errors_remote import RemoteCorrupt


class MetaCache:
    """The metadata packs of one remote, kept in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, name: str) -> Path:
        return self.directory / name

    def cached(self) -> set[str]:
        if not self.directory.is_dir():
            return set()
        return {p.name for p in self.directory.iterdir() if not p.name.startswith('.')}

    def sync(self, remote: RemoteRepo, progress: Progress = NO_PROGRESS) -> int:
        """Download the remote's metadata packs not cached yet; returns the bytes downloaded."""
        have = self.cached()
        wanted = [info for info in remote.store.list(META_PREFIX) if info.key[len(META_PREFIX) :] not in have]
        if not wanted:
            return 0
        self.directory.mkdir(parents=True, exist_ok=True)
        progress.begin('fetch metadata', sum(i.size for i in wanted))

        def download(key: str) -> int:
            data = remote.store.get(key)
            name = key[len(META_PREFIX) :]
            where = remote.store.object_url(key)
            got = pack_name(data)
            if got != name:
                raise RemoteCorrupt(where, f'the pack hashes to {got[:16]}..., not to its name: damaged')
            footer = parse_footer(data, len(data), where)
            assert not isinstance(footer, int)  # a whole pack holds its footer
            tmp = self.directory / f'.{name}.{os.getpid()}.tmp'
            with open(tmp, 'wb') as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path(name))
            progress.advance(len(data))
            return len(data)

        try:
            return sum(remote.parallel_map(download, [i.key for i in wanted]))
        finally:
            progress.end()

    def open(self) -> MetaObjects:
        return MetaObjects(self)


class MetaObjects:
    """Objects by digest from the cached packs, each checked against its digest when taken."""

    def __init__(self, cache: MetaCache) -> None:
        self.cache = cache
        self._maps: dict[str, mmap.mmap] = {}
        self._where: dict[bytes, tuple[str, int, int]] = {}  # digest -> (pack, data start, length)
        self._tables: dict[str, np.ndarray] = {}
        for name in sorted(cache.cached()):
            path = cache.path(name)
            size = path.stat().st_size
            if size == 0:
                continue
            with open(path, 'rb') as fh:
                mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            footer = parse_footer(memoryview(mm), size, str(path))
            assert not isinstance(footer, int)
            self._maps[name] = mm
            self._tables[name] = footer.table
            starts = (footer.table['offset'] + RECORD.size).tolist()
            lengths = footer.table['length'].tolist()
            self._where.update(zip(digests_of(footer.table), zip([name] * len(starts), starts, lengths)))

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, digest: object) -> bool:
        return digest in self._where

    def get(self, digest: bytes) -> bytes | None:
        """The object stored under ``digest`` (None when no cached pack holds it)."""
        found = self._where.get(digest)
        if found is None:
            return None
        pack, start, length = found
        data = self._maps[pack][start : start + length]
        if digest_of(data) != digest:
            path = self.cache.path(pack)
            self.close()
            path.unlink(missing_ok=True)
            raise CorruptData(
                f'the cached metadata pack {path} is damaged (object {digest.hex()} fails its digest); it '
                'was removed: fetch again to download it anew',
                where=str(path),
            )
        return data

    def check_pack(self, name: str) -> None:
        """Check every record of a cached pack against its checksum (fsck-like, for tests and verify)."""
        check_records(memoryview(self._maps[name]), 0, self._tables[name], str(self.cache.path(name)))

    def digests(self) -> Iterator[bytes]:
        return iter(self._where)

    def close(self) -> None:
        for mm in self._maps.values():
            try:
                mm.close()
            except BufferError:  # a view of it is still alive; the map goes when that does
                pass
        self._maps.clear()

    def __enter__(self) -> MetaObjects:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
