"""Lazy reads, in-process (the same read path a lazy mount serves, without FUSE): a clone's view of
files whose samples are fetched when read, verified, cached within a limit, pinned while open;
sequential reads fetch ahead; a big sample is streamed; a dead endpoint fails at once."""

from __future__ import annotations

import logging
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.engine.remote.lazy import attach_lazy_reader
from hangarfs.errors_remote import RemoteUnreachable
from hangarfs.fs.lazy_view import LazyView
from hangarfs.fs.view import CommitView
from tests.helpers import new_repository, npy_bytes
from tests.remotes.conftest import FAST_OPTIONS, RepoRemote, S3Server
from tests.remotes.netfaults import FaultyProxy
from tests.remotes.repos import array

N = 60
BIG = (1024, 1024, 5)  # 20 MiB of float32: streamed in 8 MiB parts


def source_repo(path: Path, remote: RepoRemote, *, big: bool = False) -> Repository:
    repo = new_repository(path)
    with closing(repo.checkout(write=True)) as co:
        images = co.add_ndarray_column('images', shape=(16, 16), dtype=np.uint8)
        images.update({i: array('uint8', (16, 16), i) for i in range(N)})
        co.add_str_column('captions').update({f'c{i}': f'caption {i}' for i in range(10)})
        if big:
            vols = co.add_ndarray_column('volumes', shape=BIG, dtype=np.float32, variable_shape=True)
            vols['scan'] = array('float32', BIG, 77)
        co.commit('data')
    remote.add_to(repo)
    repo.remote.push('origin', 'master')
    return repo


def lazy_clone(
    path: Path, remote: RepoRemote, cache: Path, size: int | str = '1G'
) -> tuple[Repository, LazyView]:
    repo = Repository(path, exists=False)
    repo.clone('Bob', 'bob@example.org', remote.url, **remote.options)
    reader = attach_lazy_reader(repo.store, cache_dir=cache, cache_size=size, warm=False)
    head = repo.store.refs.branch_head('master')
    assert head
    return repo, LazyView(CommitView(repo.store, head), reader)


def read_file(view: LazyView, path: str) -> bytes:
    node = view.lookup(path)
    assert node is not None, path
    token = view.open_file(node)
    try:
        out = b''
        while len(out) < node.size:
            out += view.read(node, 1 << 20, len(out))
        return out
    finally:
        view.release_file(token)


def test_reads_fetch_verify_and_cache(tmp_path: Path, repo_remote: RepoRemote) -> None:
    src = source_repo(tmp_path / 'a', repo_remote)
    repo, view = lazy_clone(tmp_path / 'b', repo_remote, tmp_path / 'cache')
    reader = view.reader
    # listing and stat need no data
    names = [n for n, _ in view.list_names('/images') or []]
    assert len(names) == N + 1 and view.lookup('/images/7.npy').size == 128 + 256
    assert reader.fetched == 0
    with closing(src.checkout()) as co:
        for i in (7, 3, 50):
            assert read_file(view, f'/images/{i}.npy') == npy_bytes(co['images'][i])
        assert read_file(view, '/captions/c4.txt') == b'caption 4'
    fetched = reader.fetched
    assert read_file(view, '/images/7.npy')[-256:] == array('uint8', (16, 16), 7).tobytes()
    assert reader.fetched == fetched  # from the cache
    # and a Python checkout of the same store reads through the reader too
    with closing(repo.checkout()) as co:
        assert (co['images'][50] == array('uint8', (16, 16), 50)).all()
    # a second reader (a new mount) finds the cache on disk, checks it, and fetches nothing
    reader.close()
    again = attach_lazy_reader(repo.store, cache_dir=tmp_path / 'cache', cache_size='1G', warm=False)
    view2 = LazyView(CommitView(repo.store, repo.store.refs.branch_head('master') or ''), again)
    assert read_file(view2, '/images/3.npy')[-256:] == array('uint8', (16, 16), 3).tobytes()
    assert again.fetched == 0 and again.cache.hits >= 1


def test_a_rotted_cache_file_is_fetched_again(tmp_path: Path, repo_remote: RepoRemote) -> None:
    source_repo(tmp_path / 'a', repo_remote)
    repo, view = lazy_clone(tmp_path / 'b', repo_remote, tmp_path / 'cache')
    read_file(view, '/images/9.npy')
    digest = view.lookup('/images/9.npy').version  # type: ignore[union-attr]
    path = view.reader.cache.path(digest)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    fresh = attach_lazy_reader(repo.store, cache_dir=tmp_path / 'cache', warm=False)  # a new mount
    view2 = LazyView(CommitView(repo.store, repo.store.refs.branch_head('master') or ''), fresh)
    assert read_file(view2, '/images/9.npy')[-256:] == array('uint8', (16, 16), 9).tobytes()
    assert fresh.fetched == 1 and path.read_bytes()[10] != data[10]


def test_sequential_reads_fetch_ahead_and_random_reads_do_not(
    tmp_path: Path, repo_remote: RepoRemote
) -> None:
    source_repo(tmp_path / 'a', repo_remote)
    _, view = lazy_clone(tmp_path / 'b', repo_remote, tmp_path / 'c1')
    for i in range(N):
        read_file(view, f'/images/{i}.npy')
    assert view.reader.requests <= 8, view.reader.stats()  # 1 + 1 + 2 ...: the window doubles
    _, random_view = lazy_clone(tmp_path / 'b2', repo_remote, tmp_path / 'c2')
    order = np.random.default_rng(1).permutation(N)[:20]
    for i in order:
        read_file(random_view, f'/images/{int(i)}.npy')
    assert random_view.reader.requests >= 15  # one small range read per sample


def test_cache_limit_evicts_least_recently_used_but_never_open_files(
    tmp_path: Path, repo_remote: RepoRemote
) -> None:
    source_repo(tmp_path / 'a', repo_remote)
    _, view = lazy_clone(tmp_path / 'b', repo_remote, tmp_path / 'cache', size=10 * 256)
    view.reader.prefetch = False
    held = view.lookup('/images/0.npy')
    assert held is not None
    token = view.open_file(held)  # an open file
    view.read(held, 1000, 0)
    for i in range(1, 30):
        read_file(view, f'/images/{i}.npy')
    cache = view.reader.cache
    assert cache.bytes <= 10 * 256 + 256 and cache.evictions >= 19
    assert held.version in cache  # pinned by the open file
    assert 1 not in {d for d in (view.lookup('/images/1.npy').version,) if d in cache}  # type: ignore[union-attr]
    view.release_file(token)
    read_file(view, '/images/29.npy')
    for i in range(40, 50):
        read_file(view, f'/images/{i}.npy')
    assert held.version not in cache  # released, then pushed out


def test_a_big_sample_is_streamed_verified_into_the_cache(tmp_path: Path, repo_remote: RepoRemote) -> None:
    source_repo(tmp_path / 'a', repo_remote, big=True)
    _, view = lazy_clone(tmp_path / 'b', repo_remote, tmp_path / 'cache')
    node = view.lookup('/volumes/scan.npy')
    assert node is not None
    expected = npy_bytes(array('float32', BIG, 77))
    assert node.size == len(expected)
    token = view.open_file(node)
    try:
        assert view.read(node, 4096, 0) == expected[:4096]  # the whole sample came, checked
        requests = view.reader.requests
        got = b''.join(view.read(node, 1 << 20, off) for off in range(0, node.size, 1 << 20))
    finally:
        view.release_file(token)
    assert got == expected
    assert requests == 3 and view.reader.requests == requests  # 8 MiB parts; then local reads


def test_a_dead_endpoint_fails_at_once_and_cached_samples_still_read(
    tmp_path: Path,
    s3_server: S3Server,
    proxy: FaultyProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv('AWS_ACCESS_KEY_ID', 'testing')
    monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', 'testing')
    remote = RepoRemote(
        's3', f's3://{s3_server.new_bucket()}/lazy', {'endpoint_url': proxy.endpoint, **FAST_OPTIONS}
    )
    source_repo(tmp_path / 'a', remote, big=True)
    _, view = lazy_clone(tmp_path / 'b', remote, tmp_path / 'cache')
    view.reader.prefetch = False
    read_file(view, '/images/1.npy')
    node = view.lookup('/volumes/scan.npy')
    assert node is not None
    proxy.stop_after(4 << 20)  # the endpoint dies in the middle of the big sample
    caplog.set_level(logging.WARNING, logger='hangarfs.remote')
    started = time.monotonic()
    with pytest.raises(RemoteUnreachable):
        view.read(node, 4096, 0)
    assert time.monotonic() - started < 5
    assert any('unreachable' in r.getMessage() for r in caplog.records)
    assert not list((tmp_path / 'cache').rglob('.*.tmp'))  # nothing half-fetched is kept
    started = time.monotonic()
    with pytest.raises(RemoteUnreachable, match='tried again in'):
        read_file(view, '/images/2.npy')
    assert time.monotonic() - started < 0.5  # marked offline: no network wait at all
    assert read_file(view, '/images/1.npy')[-256:] == array('uint8', (16, 16), 1).tobytes()
