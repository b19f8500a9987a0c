"""Every byte taken from a remote is checked before it is stored or served.

- a flipped byte in a data pack: fetch_data and lazy reads refuse it (RemoteCorrupt naming the pack
  and the blob) and store nothing from it; ``verify --remote`` reports it;
- a forged blob (a pusher that put other bytes under a sample's digest, with valid checksums): the
  content digest check refuses it the same way;
- a damaged metadata pack or commit object: a clone refuses it and stores nothing.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.backends.remote_repo import open_remote
from hangarfs.engine.records import ColumnSchema
from hangarfs.engine.remote.lazy import attach_lazy_reader
from hangarfs.engine.remote.verify_remote import verify_remote
from hangarfs.engine.samples import SampleCodec
from hangarfs.errors import DataNotLocal
from hangarfs.errors_remote import RemoteCorrupt
from tests.helpers import new_repository
from tests.remotes.conftest import RepoRemote, S3Server
from tests.remotes.repos import array


def pushed(path: Path, remote: RepoRemote) -> Repository:
    repo = new_repository(path)
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(16, 16), dtype=np.uint8).update(
            {i: array('uint8', (16, 16), i) for i in range(20)}
        )
        co.commit('images')
    remote.add_to(repo)
    repo.remote.push('origin', 'master')
    return repo


def clone(path: Path, remote: RepoRemote) -> Repository:
    repo = Repository(path, exists=False)
    repo.clone('Bob', 'bob@example.org', remote.url, **remote.options)
    return repo


def damage(remote: RepoRemote, key: str, offset_from_end: int, s3: S3Server | None) -> None:
    """Flip one byte of the object at ``key`` (``offset_from_end`` bytes before its end)."""
    if remote.kind == 'local':
        path = Path(remote.url) / key
        data = bytearray(path.read_bytes())
        data[len(data) - offset_from_end] ^= 0xFF
        path.write_bytes(bytes(data))
        return
    assert s3 is not None
    bucket, prefix = remote.url.split('://', 1)[1].split('/', 1)
    obj = s3.client.get_object(Bucket=bucket, Key=f'{prefix}/{key}')['Body'].read()
    data = bytearray(obj)
    data[len(data) - offset_from_end] ^= 0xFF
    s3.client.put_object(Bucket=bucket, Key=f'{prefix}/{key}', Body=bytes(data))


def locations_of(repo: Repository) -> dict[bytes, bytes]:
    return dict(repo.store.history_table('locations').items())


def data_files(repo: Repository) -> list[Path]:
    return sorted(p for p in (repo.store.dir / 'data').rglob('*') if p.is_file())


@pytest.fixture
def s3(repo_remote: RepoRemote, request: pytest.FixtureRequest) -> S3Server | None:
    return request.getfixturevalue('s3_server') if repo_remote.kind == 's3' else None


def test_a_flipped_byte_in_a_data_pack_is_refused_and_nothing_is_stored(
    tmp_path: Path, repo_remote: RepoRemote, s3: S3Server | None
) -> None:
    pushed(tmp_path / 'a', repo_remote)
    b = clone(tmp_path / 'b', repo_remote)
    remote = open_remote(repo_remote.url, **repo_remote.store_options())
    (pack,) = [p for p in remote.known_digests().packs if p.startswith('data/images/')]
    damage(repo_remote, pack, 4000, s3)  # inside the records: sample data
    before, files = locations_of(b), data_files(b)
    with pytest.raises(RemoteCorrupt, match=pack.rsplit('/', 1)[-1]) as err:
        b.remote.fetch_data('origin', branch='master')
    assert err.value.url.endswith(pack)
    assert locations_of(b) == before and data_files(b) == files  # nothing stored
    # a lazy read refuses it too, and caches nothing
    reader = attach_lazy_reader(b.store, cache_dir=tmp_path / 'cache', warm=False)
    reader.prefetch = False
    with closing(b.checkout()) as co, pytest.raises(RemoteCorrupt):
        for key in list(co['images']):
            co['images'][key]
    assert reader.cache.stats()['samples'] < 20
    report = verify_remote(b.store, 'origin')
    assert not report.ok and any(pack in p for p in report.problems), report.problems


def test_a_forged_sample_fails_its_content_digest(tmp_path: Path, repo_remote: RepoRemote) -> None:
    """Bytes stored under a sample's digest that are not the sample (checksums valid): refused."""
    remote = open_remote(repo_remote.url, create=True, **repo_remote.store_options())
    schema = ColumnSchema('ndarray', dtype='|u1', shape=(16, 16))
    digest = SampleCodec('images', schema).prepare(array('uint8', (16, 16), 3)).digest  # image 3's
    remote.write_data_packs('images', [(digest, array('uint8', (16, 16), 999).tobytes())])
    a = pushed(tmp_path / 'a', repo_remote)  # the push finds image 3's digest there and skips it
    assert a.remote.last_report.samples == 19
    b = clone(tmp_path / 'b', repo_remote)
    placeholder = b.store.location(digest)
    assert placeholder is not None and placeholder.startswith(b'50')
    with pytest.raises(RemoteCorrupt, match='does not hash to its digest') as err:
        b.remote.fetch_data_sample('origin', 'images', [2, 3, 4], branch='master')
    assert err.value.digest == digest and err.value.url.startswith(repo_remote.url)
    assert b.store.location(digest) == placeholder  # nothing stored from the forged pack
    b.remote.fetch_data_sample('origin', 'images', [2, 4], branch='master')  # the others are fine
    with closing(b.checkout()) as co:
        assert (co['images'][2] == array('uint8', (16, 16), 2)).all()
        with pytest.raises(DataNotLocal):
            co['images'][3]
    attach_lazy_reader(b.store, cache_dir=tmp_path / 'cache', warm=False)
    with closing(b.checkout()) as co, pytest.raises(RemoteCorrupt, match='does not hash to its digest'):
        co['images'][3]
    report = verify_remote(b.store, 'origin')
    assert any(digest.hex() in p for p in report.problems), report.problems


def test_a_damaged_metadata_pack_or_commit_stops_a_clone(
    tmp_path: Path, repo_remote: RepoRemote, s3: S3Server | None
) -> None:
    pushed(tmp_path / 'a', repo_remote)
    remote = open_remote(repo_remote.url, **repo_remote.store_options())
    (meta,) = [i.key for i in remote.store.list('meta/')]
    damage(repo_remote, meta, 100, s3)
    with pytest.raises(RemoteCorrupt, match='not to its name'):
        clone(tmp_path / 'b', repo_remote)
    damage(repo_remote, meta, 100, s3)  # repaired
    (commit,) = remote.list_commits()
    damage(repo_remote, f'commits/{commit}', 5, s3)
    with pytest.raises(RemoteCorrupt, match='does not hash to its name'):
        clone(tmp_path / 'c', repo_remote)
    c = Repository(tmp_path / 'c')
    assert c.store.refs.branch_head('master') == '' and c.list_branches() == ['master']
