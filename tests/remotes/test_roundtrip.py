"""Push, clone, fetch and fetch data through ``repo.remote``, as users do, against a directory remote
and an S3 remote (moto): every column kind and layout, metadata, tags, commit properties, history.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from hangarfs import Repository
from hangarfs.engine.verify import verify_store
from hangarfs.errors import DataNotLocal, ReadOnlyError
from hangarfs.errors_remote import PushRejected
from tests.helpers import checkout_contents, new_repository
from tests.remotes.conftest import RepoRemote
from tests.remotes.repos import all_contents, array, build_rich, contents


def clone_of(path: Path, remote: RepoRemote) -> Repository:
    repo = Repository(path, exists=False)
    assert repo.clone('Bob', 'bob@example.org', remote.url, **remote.options) == 'master'
    return repo


def test_push_clone_fetch_data_round_trip(tmp_path: Path, repo_remote: RepoRemote) -> None:
    a = build_rich(tmp_path / 'a')
    repo_remote.add_to(a)
    assert a.remote.list_all() == [('origin', repo_remote.url)]
    assert a.remote.push('origin', 'master') == 'master'
    first = a.remote.last_report
    assert first.commits == 2 and first.old_head is None and set(first.tags) == {'v1', 'v2'}
    assert a.remote.push('origin', 'relabel') == 'relabel'
    assert a.remote.last_report.commits == 1 and a.remote.last_report.samples == 0  # labels are inline

    b = clone_of(tmp_path / 'b', repo_remote)
    assert b.list_branches() == ['master', 'origin/master', 'origin/relabel']
    assert set(b.list_tags()) == {'v1', 'v2'} and b.get_tag('v1').message == 'first release'
    assert b.store.refs.branch_head('master') == a.store.refs.branch_head('master')
    # history only: the records, schemas and inline values are here, the sample bytes are not
    with closing(b.checkout()) as co:
        assert co.commit_properties == {}
        assert int(co['labels'][3]) == 3 and co.metadata['note'] == 'second'
        assert len(co['images']) == 39 and co['volumes'].info('big').shape == (16, 16, 4)
        with pytest.raises(DataNotLocal, match=r"stored only on remote 'origin'.*fetch_data_sample") as err:
            co['images'][5]
        assert err.value.remote == 'origin' and err.value.column == 'images' and err.value.key == 5

    commits = b.remote.fetch_data('origin', branch='origin/relabel', retrieve_all_history=True)
    assert len(commits) == 3
    assert b.remote.last_report.samples > 0
    expected = all_contents(a, {'master': 'master', 'relabel': 'relabel'})
    assert all_contents(b, {'master': 'master', 'origin/relabel': 'relabel'}) == expected
    assert contents(b, 'v1')['properties'] == {'lr': 0.01, 'epochs': 3}
    assert verify_store(b.store).ok and verify_store(b.store).remote == 0


def test_incremental_push_and_fetch_move_only_the_change(tmp_path: Path, repo_remote: RepoRemote) -> None:
    a = build_rich(tmp_path / 'a')
    repo_remote.add_to(a)
    a.remote.push('origin', 'master')
    b = clone_of(tmp_path / 'b', repo_remote)
    b.remote.fetch_data('origin', branch='master')

    # Bob changes two images and adds one, and pushes
    with closing(b.checkout(write=True, branch='master')) as co:
        co['images'][2] = array('uint8', (8, 8), 9002)
        co['images'][3] = array('uint8', (8, 8), 9003)
        co['images']['extra'] = array('uint8', (8, 8), 9004)
        co['images'][4] = array('uint8', (8, 8), 5000)  # bytes the remote holds already (image 0)
        co.commit('bob: three images')
    b.remote.push('origin', 'master')
    report = b.remote.last_report
    assert (report.commits, report.samples, report.sample_bytes) == (1, 3, 3 * 64)
    assert report.samples_skipped >= 1

    assert a.remote.fetch('origin', 'master') == 'origin/master'
    assert a.remote.last_report.commits == 1
    assert a.store.refs.branch_head('origin/master') == b.store.refs.branch_head('master')
    with closing(a.checkout(branch='origin/master')) as co:  # history is here, the three new images are not
        assert co['images'][4].tobytes() == array('uint8', (8, 8), 5000).tobytes()  # local bytes
        with pytest.raises(DataNotLocal):
            co['images'][2]
    a.merge('take bob', 'master', 'origin/master')  # a fast-forward
    a.remote.fetch_data('origin', branch='master', column_names=['images'])
    assert a.remote.last_report.samples == 3
    assert contents(a, 'master') == contents(b, 'master')


def test_partial_fetch_by_column_keys_and_budget(tmp_path: Path, repo_remote: RepoRemote) -> None:
    a = build_rich(tmp_path / 'a')
    repo_remote.add_to(a)
    a.remote.push('origin', 'master')
    b = clone_of(tmp_path / 'b', repo_remote)
    head = b.store.refs.branch_head('master')

    b.remote.fetch_data('origin', branch='master', column_names=['captions'])
    with closing(b.checkout()) as co:
        assert co['captions']['c4'] == 'caption 4 ✓'
        with pytest.raises(DataNotLocal):
            co['blobs'][4]

    assert b.remote.fetch_data_sample('origin', 'images', [5, 7], commit=head) == head
    assert b.remote.last_report.samples == 2
    b.remote.fetch_data_sample('origin', 'scans', [('patient1', 'axial'), (7,)], branch='master')
    b.remote.fetch_data_sample('origin', 'volumes', 'small', branch='master')
    with closing(b.checkout()) as co, closing(a.checkout()) as ca:
        assert (co['images'][5] == ca['images'][5]).all() and (co['images'][7] == ca['images'][7]).all()
        with pytest.raises(DataNotLocal):
            co['images'][6]
        assert (co['scans']['patient1', 'axial'] == ca['scans']['patient1', 'axial']).all()
        assert (co['scans'][7, 0] == ca['scans'][7, 0]).all()
        with pytest.raises(DataNotLocal):
            co['scans']['patient1', 'coronal']
        assert (co['volumes']['small'] == ca['volumes']['small']).all()
    b.remote.fetch_data_sample('origin', 'scans', [('patient1', ...)], branch='master')
    with closing(b.checkout()) as co:
        assert co['scans']['patient1']['coronal'].shape == (4, 4)

    b.remote.fetch_data('origin', branch='master', column_names=['images'], max_num_bytes=10 * 64)
    fetched = b.remote.last_report
    assert fetched.samples == 10 and fetched.left_out == 39 - 2 - 10 and fetched.already_local == 2
    b.remote.fetch_data('origin', branch='master')
    assert contents(b, 'master') == contents(a, 'master')
    b.remote.fetch_data('origin', branch='master')  # nothing left to fetch
    assert b.remote.last_report.samples == 0


def test_non_fast_forward_is_refused_unless_forced(tmp_path: Path, repo_remote: RepoRemote) -> None:
    a = build_rich(tmp_path / 'a', n=5)
    repo_remote.add_to(a)
    a.remote.push('origin', 'master')
    b = clone_of(tmp_path / 'b', repo_remote)
    with closing(b.checkout(write=True, branch='master')) as co:
        co['captions']['bob'] = 'bob was here'
        co.commit('bob')
    b.remote.push('origin', 'master')
    with closing(a.checkout(write=True, branch='master')) as co:
        co['captions']['ada'] = 'ada was here'
        co.commit('ada')
    with pytest.raises(PushRejected, match='fetch, merge, push') as err:
        a.remote.push('origin', 'master')
    assert err.value.remote_head == b.store.refs.branch_head('master')
    # the way out: fetch, merge, push
    a.remote.fetch('origin', 'master')
    a.merge('merge bob', 'master', 'origin/master')
    a.remote.push('origin', 'master')
    b.remote.fetch('origin', 'master')
    b.remote.fetch_data('origin', branch='origin/master', column_names=['captions'])
    with closing(b.checkout(branch='origin/master')) as co:
        assert co['captions']['ada'] == 'ada was here' and co['captions']['bob'] == 'bob was here'
    # a forced push drops Bob's line from the branch (his commits stay in the remote's refs-log)
    with closing(b.checkout(write=True, branch='master')) as co:
        co['captions']['bob2'] = 'again'
        co.commit('bob again')
    with pytest.raises(PushRejected):
        b.remote.push('origin', 'master')
    a_head = a.store.refs.branch_head('master')
    with closing(a.checkout(write=True, branch='master')) as co:
        co['captions']['ada2'] = 'ada again'
        co.commit('ada again')
    b.remote.push('origin', 'master', force=True)
    assert b.remote.last_report.forced
    a.remote.fetch('origin', 'master')
    assert a.store.refs.branch_head('origin/master') == b.store.refs.branch_head('master') != a_head


def test_remote_tracking_branches_are_read_only(tmp_path: Path, repo_remote: RepoRemote) -> None:
    a = build_rich(tmp_path / 'a', n=3)
    repo_remote.add_to(a)
    a.remote.push('origin', 'relabel')
    b = new_repository(tmp_path / 'b')
    repo_remote.add_to(b)
    b.remote.fetch('origin', 'relabel')
    assert b.list_branches() == ['master', 'origin/relabel']
    with pytest.raises(ReadOnlyError, match='remote-tracking branch'):
        b.checkout(write=True, branch='origin/relabel')
    with pytest.raises(ValueError, match='remote-tracking'):
        b.remote.push('origin', 'origin/relabel')
    b.create_branch('mine', 'origin/relabel')
    b.remote.fetch_data('origin', branch='mine', column_names=['images'])
    with closing(b.checkout(branch='mine')) as co:
        assert len(co['images']) == 2  # the second commit removed image 1
    b.remove_branch('origin/relabel')
    assert b.list_branches() == ['master', 'mine']
    b.remote.fetch('origin', 'relabel')
    assert 'origin/relabel' in b.list_branches()
    b.remote.remove('origin')
    assert b.list_branches() == ['master', 'mine'] and b.remote.list_all() == []


def test_local_bytes_replace_a_remote_placeholder(tmp_path: Path, repo_remote: RepoRemote) -> None:
    """Writing a sample whose bytes only the remote holds stores them here (never just the name)."""
    a = build_rich(tmp_path / 'a', n=4)
    repo_remote.add_to(a)
    a.remote.push('origin', 'master')
    b = clone_of(tmp_path / 'b', repo_remote)
    same = array('uint8', (8, 8), 2)  # image 2's bytes, which b does not hold
    with closing(b.checkout(write=True, branch='master')) as co:
        co['images']['copy'] = same
        assert (co['images']['copy'] == same).all()
        co.commit('copy')
    with closing(b.checkout()) as co:
        assert (co['images']['copy'] == same).all() and (co['images'][2] == same).all()
    assert verify_store(b.store).ok


def test_a_remote_without_branches_clones_to_an_empty_repository(
    tmp_path: Path, repo_remote: RepoRemote
) -> None:
    from hangarfs.backends.remote_repo import open_remote

    open_remote(repo_remote.url, create=True, **repo_remote.store_options()).close()
    b = clone_of(tmp_path / 'b', repo_remote)
    assert b.list_branches() == ['master'] and b.store.refs.branch_head('master') == ''
    # and it is a working repository that can push
    with closing(b.checkout(write=True, branch='master')) as co:
        co.add_str_column('notes')['x'] = 'y'
        co.commit('one')
    b.remote.push('origin', 'master')
    c = clone_of(tmp_path / 'c', repo_remote)
    c.remote.fetch_data('origin', branch='master')
    with closing(c.checkout()) as co:
        assert checkout_contents(co)['notes']['samples'] == {'x': 'y'}
