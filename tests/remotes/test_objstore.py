"""The object-store contract, run against a local directory, S3 (moto server) and fsspec's memory://.

Every store returns what it was given, reads byte ranges (short past the end, as a file does), lists
by prefix in key order, refuses a create-only write over an existing object, and moves an object by
compare-and-swap only from the version it was read at. Errors are typed and name the object's URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hangarfs.backends.objstore import ObjectStore, open_object_store
from hangarfs.errors_remote import (
    RemoteObjectExists,
    RemoteObjectNotFound,
    RemotePreconditionFailed,
    UnsafeRemoteWrite,
)
from tests.remotes.conftest import FAST_RETRY, S3_KEYS, S3Server


@pytest.fixture(params=['local', 's3', 'memory'])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == 'local':
        st = open_object_store(str(tmp_path / 'store'), create=True, retry=FAST_RETRY)
    elif request.param == 's3':
        server: S3Server = request.getfixturevalue('s3_server')
        st = open_object_store(
            f's3://{server.new_bucket()}/some/prefix',
            endpoint_url=server.endpoint,
            retry=FAST_RETRY,
            **S3_KEYS,
        )
    else:
        st = open_object_store(f'memory://hangarfs-test-{uuid.uuid4().hex}', unsafe_single_writer=True)
    yield st
    st.close()


def test_round_trip_ranges_head_list_delete(store: ObjectStore) -> None:
    payload = bytes(range(256)) * 40
    store.put('data/a/one', payload)
    store.put('data/b/two', b'2')
    store.put('index/x', b'x')
    assert store.get('data/a/one') == payload
    assert store.get_ranges('data/a/one', [(0, 10), (100, 356), (10_000, 10_240)]) == [
        payload[:10],
        payload[100:356],
        payload[10_000:10_240],
    ]
    assert store.get_range('data/a/one', 10_200, 20_000) == payload[10_200:]  # short past the end
    info = store.head('data/a/one')
    assert (info.key, info.size) == ('data/a/one', len(payload))
    assert [i.key for i in store.list('data/')] == ['data/a/one', 'data/b/two']
    assert [i.key for i in store.list('data/a')] == ['data/a/one']
    assert [i.key for i in store.list('')] == ['data/a/one', 'data/b/two', 'index/x']
    assert [i.size for i in store.list('data/')] == [len(payload), 1]
    assert len(store.list('', limit=1)) == 1
    store.delete('data/b/two')
    store.delete('data/b/two')  # deleting what is gone is not an error
    assert not store.exists('data/b/two')
    with pytest.raises(RemoteObjectNotFound, match='data/b/two') as err:
        store.get('data/b/two')
    assert store.url in str(err.value)
    assert isinstance(err.value, FileNotFoundError)


def test_create_only_and_compare_and_swap(store: ObjectStore) -> None:
    v1 = store.put_create('refs', b'one')
    with pytest.raises(RemoteObjectExists, match='refs'):
        store.put_create('refs', b'other')
    data, version = store.get_versioned('refs')
    assert data == b'one' and version == v1
    v2 = store.put_if_match('refs', b'two', version)
    assert v2 != v1
    with pytest.raises(RemotePreconditionFailed, match='refs') as err:
        store.put_if_match('refs', b'three', v1)  # stale: read before 'two' was written
    assert store.url in str(err.value)
    assert store.get_versioned('refs') == (b'two', v2)
    assert store.put_if_match('refs', b'three', v2) == store.get_versioned('refs')[1]


def test_fsspec_store_refuses_conditional_writes_without_the_opt_in() -> None:
    st = open_object_store(f'memory://hangarfs-test-{uuid.uuid4().hex}')
    assert not st.capabilities.conditional_update
    st.put('refs', b'one')
    with pytest.raises(UnsafeRemoteWrite, match='unsafe_single_writer=True'):
        st.put_if_match('refs', b'two', st.get_versioned('refs')[1])
    with pytest.raises(UnsafeRemoteWrite, match='memory://'):
        st.put_create('other', b'x')
    assert st.get('refs') == b'one'


def test_local_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    st = open_object_store(str(tmp_path / 'r'), create=True)
    for bad in ('../x', 'a/../../x', '.tmp/x', '', 'a//b'):
        with pytest.raises(ValueError, match='object key'):
            st.put(bad, b'x')
    st.put('a/b', b'x')
    assert not (tmp_path / 'x').exists()
    assert [i.key for i in st.list('')] == ['a/b']  # .tmp and .locks never show


def test_local_store_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    st = open_object_store(str(tmp_path / 'r'), create=True)
    st.put_create('k', b'1')
    st.put_if_match('k', b'2', st.get_versioned('k')[1])
    with pytest.raises(RemoteObjectExists):
        st.put_create('k', b'3')
    assert list((tmp_path / 'r' / '.tmp').iterdir()) == []


def test_missing_local_directory_is_named(tmp_path: Path) -> None:
    st = open_object_store(str(tmp_path / 'nowhere'))
    with pytest.raises(RemoteObjectNotFound, match='does not exist'):
        st.get('config')
    with pytest.raises(RemoteObjectNotFound, match='nowhere'):
        st.put('x', b'1')
