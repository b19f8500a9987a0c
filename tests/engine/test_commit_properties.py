"""Commit properties: a typed key/value map recorded on one commit (not versioned with the data)."""

from __future__ import annotations

import json
from contextlib import closing

import numpy as np
import pytest

from hangarfs import Repository
from hangarfs.engine.records import CommitRecord, digest_of
from hangarfs.errors import InvalidProperty, NothingToCommit
from hangarfs.fs.view import CommitView

PROPS = {'epochs': 1000, 'lr': 0.0001, 'optimizer': 'adam', 'early_stop': True, 'loss': 1.0, 'seed': -7}


def test_a_record_without_properties_keeps_its_bytes_and_digest() -> None:
    """Every commit made before properties existed keeps its digest: the key is absent when empty."""
    rec = CommitRecord(('a' * 64,), 'b' * 64, 'Ada', 'ada@example.org', 1_700_000_000_000_000_000, 'msg')
    expected = (
        b'C{"author":"Ada","email":"ada@example.org","message":"msg","parents":["' + b'a' * 64 + b'"],'
        b'"snapshot":"' + b'b' * 64 + b'","time_ns":1700000000000000000}'
    )
    assert rec.to_bytes() == expected
    assert rec.digest == digest_of(expected).hex()
    assert CommitRecord.from_bytes(expected) == rec and CommitRecord.from_bytes(expected).properties == {}
    with_props = CommitRecord(
        rec.parents, rec.snapshot, rec.author, rec.email, rec.time_ns, rec.message, {'a': 1}
    )
    assert with_props.digest != rec.digest and b'"properties":{"a":1}' in with_props.to_bytes()


def test_properties_round_trip_with_their_types(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('notes')['x'] = 'hello'
        first = co.commit('data only')
        co['notes']['y'] = 'more'
        props = {**PROPS, 'np_float': np.float32(0.5), 'np_int': np.int64(3), 'np_bool': np.bool_(False)}
        second = co.commit('trained', properties=props)
        assert co.commit_properties['epochs'] == 1000  # the writer's base is now the new commit
    with closing(repo.checkout(commit=second)) as co:
        got = co.commit_properties
    assert got == {**PROPS, 'np_float': 0.5, 'np_int': 3, 'np_bool': False}
    for key, value in got.items():
        expected_type = {'np_float': float, 'np_int': int, 'np_bool': bool}.get(key, type(PROPS.get(key)))
        assert type(value) is expected_type, key
    with closing(repo.checkout(commit=first)) as co:
        assert co.commit_properties == {}  # not inherited in either direction
    with closing(repo.checkout(write=True)) as co:
        co['notes']['z'] = 'later'
        third = co.commit('later')
    with closing(repo.checkout(commit=third)) as co:
        assert co.commit_properties == {}
    log = repo.log(return_contents=True)
    assert log is not None
    assert log['properties'][second] == got and log['properties'][first] == {}
    repo.verify_repo_integrity()


def test_a_commit_of_only_properties_is_allowed(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('notes')['x'] = 'hello'
        first = co.commit('data')
        with pytest.raises(NothingToCommit):
            co.commit('nothing')
        second = co.commit('metrics of the run', properties={'accuracy': 0.93})
    assert not repo.diff(first, second)  # the same data: only the commit's properties are new
    with closing(repo.checkout(commit=second)) as co:
        assert co.commit_properties == {'accuracy': 0.93} and co['notes']['x'] == 'hello'


@pytest.mark.parametrize(
    ('props', 'needle'),
    [
        ({'lr': [0.1]}, 'has type list'),
        ({'lr': None}, 'has type NoneType'),
        ({'lr': float('nan')}, 'finite numbers'),
        ({'lr': float('inf')}, 'finite numbers'),
        ({'big': 2**64}, 'int64 range'),
        ({'bad/key': 1}, 'characters outside'),
        ({'': 1}, 'must not be empty'),
        ({5: 1}, 'must be a str'),
        ({'arr': np.zeros(3)}, 'has type ndarray'),
    ],
)
def test_bad_properties_are_refused_and_nothing_is_committed(
    repo: Repository, props: dict, needle: str
) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('notes')['x'] = 'hello'
        with pytest.raises(InvalidProperty, match=needle):
            co.commit('bad', properties={'fine': 1, **props})
        assert co.commit_hash == ''  # nothing was committed, the staged data is still there
        assert co['notes']['x'] == 'hello'
        co.commit('good')


def test_the_mount_view_shows_the_properties_in_commit_json(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('notes')['x'] = 'hello'
        digest = co.commit('trained', properties=PROPS)
    view = CommitView(repo.store, digest)
    node = view.lookup('/.hangarfs/commit.json')
    assert node is not None
    info = json.loads(view.read(node, node.size, 0))
    assert info['properties'] == PROPS
    assert type(info['properties']['epochs']) is int and type(info['properties']['loss']) is float
