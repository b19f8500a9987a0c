"""The remote repository layout, against a local-directory remote and an S3 remote (moto server).

Round trips of data and meta packs, commits and refs; deduplication against the index; the index
read with one LIST; opening what is not a hangarfs remote, or one of a newer format; a damaged pack,
index, refs document or a truncated object found by reads and by fsck.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hangarfs.backends.remote_repo import FORMAT_VERSION, RemoteRepo, open_remote
from hangarfs.errors_remote import (
    RemoteBlobMissing,
    RemoteCorrupt,
    RemoteFormatError,
    RemoteNotARepository,
    RemoteRefMoved,
)
from tests.remotes.conftest import FAST_RETRY, S3_KEYS, RemoteSpec, S3Server, blob_set

COMMIT = 'c0' * 32


def test_round_trip_of_data_meta_commits_and_refs(remote: RemoteRepo, remote_spec: RemoteSpec) -> None:
    images, labels, meta = blob_set(300, 1000, seed=1), blob_set(300, 8, seed=2), blob_set(20, 200, seed=3)
    rep = remote.write_data_packs('images', images)
    assert (rep.blobs_written, rep.blobs_skipped) == (300, 0)
    assert rep.bytes_written == sum(len(b) for _, b in images)
    assert len(rep.packs) > 2 and all(p.key.startswith('data/images/') for p in rep.packs)
    remote.write_data_packs('labels', labels)
    remote.write_meta_packs(meta)
    remote.put_commit(COMMIT, b'commit record')
    remote.put_commit(COMMIT, b'commit record')  # immutable: again is a no-op
    snap = remote.update_refs(
        remote.read_refs(), branches={'master': COMMIT}, tags={'v1': COMMIT}, message='m'
    )
    assert snap.generation == 1

    other = remote_spec.open()  # a second client, nothing cached
    assert dict(other.read_refs().branches) == {'master': COMMIT}
    assert dict(other.read_refs().tags) == {'v1': COMMIT}
    assert other.list_commits() == [COMMIT] and other.get_commits([COMMIT]) == {COMMIT: b'commit record'}
    assert {d: bytes(b) for d, b in other.read_group('images')} == dict(images)
    assert {d: bytes(b) for d, b in other.read_group('labels')} == dict(labels)
    assert {d: bytes(b) for d, b in other.read_meta()} == dict(meta)
    wanted = [images[5][0], labels[7][0], images[299][0]]
    assert {d: bytes(b) for d, b in other.read_blobs(wanted)} == {d: dict(images + labels)[d] for d in wanted}
    assert len(other.known_digests()) == 620
    with pytest.raises(RemoteBlobMissing, match=bytes(32).hex()):
        other.read_blobs([bytes(32)])
    report = other.fsck()
    assert report.ok, report.problems
    assert (report.blobs_checked, report.commits, report.orphan_packs) == (620, 1, ())


def test_known_digests_costs_one_list_plus_index_reads(remote: RemoteRepo, remote_spec: RemoteSpec) -> None:
    remote.write_data_packs('images', blob_set(400, 1000), index_every=2)
    n_index = len(remote.store.list('index/'))
    assert n_index >= 2
    other = remote_spec.open()
    other.store.stats.reset()
    index = other.known_digests()
    assert len(index) == 400
    assert other.store.stats.snapshot()['requests'] == {'list': 1, 'get': n_index}


def test_a_second_upload_sends_only_what_is_missing(remote: RemoteRepo) -> None:
    blobs = blob_set(200, 1000)
    remote.write_data_packs('images', blobs[:120])
    remote.store.stats.reset()
    rep = remote.write_data_packs('images', blobs + blobs[:10])  # repeats inside the stream too
    assert (rep.blobs_written, rep.blobs_skipped) == (80, 130)
    assert remote.store.stats.snapshot()['bytes_up'] < 100 * 1100


def test_index_files_are_cached_and_checked(remote_spec: RemoteSpec, tmp_path: Path) -> None:
    r = remote_spec.open(create=True, cache_dir=tmp_path / 'cache')
    r.write_data_packs('images', blob_set(50))
    again = remote_spec.open(cache_dir=tmp_path / 'cache')
    again.known_digests()
    cached = list((tmp_path / 'cache' / 'index').iterdir())
    assert len(cached) == 1
    third = remote_spec.open(cache_dir=tmp_path / 'cache')
    third.store.stats.reset()
    assert len(third.known_digests()) == 50
    assert third.store.stats.snapshot()['requests'] == {'list': 1}  # index bytes from the cache
    cached[0].write_bytes(b'garbage')  # a damaged cache entry is not used
    fourth = remote_spec.open(cache_dir=tmp_path / 'cache')
    assert len(fourth.known_digests()) == 50


def test_refs_compare_and_swap_and_log(remote: RemoteRepo) -> None:
    empty = remote.read_refs()
    assert not empty.exists and empty.generation == 0
    s1 = remote.update_refs(empty, branches={'master': 'aa'}, tags={}, message='first push')
    with pytest.raises(RemoteRefMoved, match='the remote branch moved') as err:
        remote.update_refs(empty, branches={'master': 'bb'}, tags={})
    assert 'Fetch, merge, then push again' in str(err.value) and remote.url in str(err.value)
    s2 = remote.update_refs(s1, branches={'master': 'cc', 'dev': 'dd'}, tags={'v1': 'cc'})
    with pytest.raises(RemoteRefMoved, match="branch 'dev'") as err:
        remote.update_refs(s1, branches={'master': 'ee'}, tags={})
    assert (err.value.expected_generation, err.value.found_generation) == (1, 2)
    s3 = remote.update_refs(s2, branches={}, tags={'v1': 'cc'}, message='delete branches')
    assert dict(remote.read_refs().branches) == {} and remote.read_refs().generation == 3
    log = remote.refs_log()
    assert [s.generation for s in log] == [2, 1]  # newest first
    assert dict(log[0].branches) == {'master': 'cc', 'dev': 'dd'} and log[1].message == 'first push'
    assert s3.previous == log[0].log_key and log[0].previous == log[1].log_key
    with pytest.raises(ValueError, match='non-empty'):
        remote.update_refs(s3, branches={'x': ''}, tags={})


def test_config_is_written_once_and_checked(remote_spec: RemoteSpec) -> None:
    first = remote_spec.open(create=True)
    again = remote_spec.open(create=True)  # opening with create=True an existing remote keeps it
    assert again.config.repository_id == first.config.repository_id
    assert first.config.version == FORMAT_VERSION


def _write_raw(spec: RemoteSpec, key: str, data: bytes) -> None:
    remote = spec.open(create=True)
    remote.store.put(key, data)


def test_a_newer_format_version_is_refused(remote_spec: RemoteSpec) -> None:
    r = remote_spec.open(create=True)
    doc = json.loads(r.store.get('config'))
    r.store.put('config', json.dumps({**doc, 'version': FORMAT_VERSION + 1}).encode())
    with pytest.raises(RemoteFormatError, match=f'format version {FORMAT_VERSION + 1}.*upgrade hangarfs'):
        remote_spec.open()
    r.store.put('config', json.dumps({**doc, 'features': ['zstd-packs']}).encode())
    with pytest.raises(RemoteFormatError, match='zstd-packs'):
        remote_spec.open()


def test_urls_that_are_not_hangarfs_remotes(
    remote_spec: RemoteSpec, s3_server: S3Server, tmp_path: Path
) -> None:
    with pytest.raises(RemoteNotARepository, match=r'no hangarfs remote at .*push to it'):
        remote_spec.open()  # empty location, no create
    r = remote_spec.open(create=True)
    r.store.delete('config')
    r.store.put('photos/cat.jpg', b'\xff\xd8')
    with pytest.raises(RemoteNotARepository, match=r"photos/cat.jpg.*no 'config'"):
        remote_spec.open(create=True)  # never writes into someone else's data
    r.store.put('config', b'[core]\nbare = true\n')
    with pytest.raises(RemoteNotARepository, match='not a hangarfs remote config'):
        remote_spec.open()
    r.store.put('config', b'{"format": "zarr"}')
    with pytest.raises(RemoteNotARepository, match='not a hangarfs remote config'):
        remote_spec.open()
    with pytest.raises(RemoteNotARepository, match="the bucket 'no-such-bucket' does not exist"):
        open_remote('s3://no-such-bucket/x', endpoint_url=s3_server.endpoint, retry=FAST_RETRY, **S3_KEYS)
    with pytest.raises(RemoteNotARepository, match=r'directory .* does not exist'):
        open_remote(str(tmp_path / 'no' / 'such' / 'dir'))


def test_damaged_index_refs_and_truncated_objects_are_named(
    remote: RemoteRepo, remote_spec: RemoteSpec
) -> None:
    blobs = blob_set(100, 1000)
    rep = remote.write_data_packs('images', blobs)
    store = remote.store
    index_key = rep.index_keys[0]
    good_index = store.get(index_key)
    store.put(index_key, good_index[:-100])  # truncated index file
    with pytest.raises(RemoteCorrupt, match=f'{index_key}.*does not hash to its name'):
        remote_spec.open().known_digests()
    store.put(index_key, good_index)

    pack = rep.packs[1]
    good_pack = store.get(pack.key)
    store.put(pack.key, good_pack[: pack.size - 5000])  # truncated pack
    other = remote_spec.open()
    with pytest.raises(RemoteCorrupt, match=f'{pack.key}.*truncated'):
        list(other.read_group('images'))
    report = other.fsck()
    assert not report.ok and any(pack.key in p for p in report.problems)

    damaged = bytearray(good_pack)
    damaged[len(good_pack) // 2] ^= 0x01  # a flipped bit in the middle of a record
    store.put(pack.key, bytes(damaged))
    with pytest.raises(RemoteCorrupt, match=f'{pack.key}.*blob [0-9a-f]{{64}}.*checksum mismatch'):
        list(remote_spec.open().read_group('images'))
    report = remote_spec.open().fsck()
    assert len(report.problems) == 1 and pack.key in report.problems[0]
    store.put(pack.key, good_pack)
    assert remote_spec.open().fsck().ok

    remote.update_refs(remote.read_refs(), branches={'master': COMMIT}, tags={})
    refs = store.get('refs')
    store.put('refs', refs[: len(refs) // 2])
    with pytest.raises(RemoteCorrupt, match=r'refs.*not a valid refs document'):
        remote.read_refs()
    report = remote_spec.open().fsck()
    assert any('refs' in p for p in report.problems)


def test_fsck_reports_dangling_refs_and_missing_packs(remote: RemoteRepo) -> None:
    rep = remote.write_data_packs('images', blob_set(100))
    remote.update_refs(remote.read_refs(), branches={'master': COMMIT}, tags={})  # no commit object
    remote.store.delete(rep.packs[0].key)
    problems = remote.fsck().problems
    assert any(f'names commit {COMMIT}, which the remote does not hold' in p for p in problems)
    assert any(
        f'names pack {remote.store.object_url(rep.packs[0].key)}, which is missing' in p for p in problems
    )


def test_bad_arguments(remote: RemoteRepo) -> None:
    with pytest.raises(ValueError, match='group name'):
        remote.write_data_packs('../x', [])
    with pytest.raises(ValueError, match='commit id'):
        remote.put_commit('../../etc', b'')
    with pytest.raises(TypeError, match='unknown S3 option'):
        open_remote('s3://b/x', endpont_url='http://127.0.0.1:1', **S3_KEYS)
