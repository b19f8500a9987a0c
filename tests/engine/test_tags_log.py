"""Tags, the log graph and resetting the staging area (issue 3)."""

from __future__ import annotations

import re
import time
from contextlib import closing
from typing import Any

import pytest

from hangarfs import Repository
from hangarfs.errors import InvalidKey, NothingStaged, RefNotFound, TagExists
from tests.helpers import USER, wait_until


@pytest.fixture
def two_commits(repo: Repository) -> tuple[Repository, str, str]:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('labels').update({i: str(i) for i in range(10)})
        first = co.commit('first')
        co['labels'][0] = 'zero'
        second = co.commit('second')
    return repo, first, second


def change(repo: Repository, branch: str, key: int, value: str, message: str) -> str:
    with closing(repo.checkout(write=True, branch=branch)) as co:
        co['labels'][key] = value
        return co.commit(message)


# ---------------------------------------------------------------------------------------- tags


def test_a_tag_names_a_commit_for_good(two_commits: tuple[Repository, str, str]) -> None:
    repo, _, second = two_commits
    before = time.time()
    tag = repo.create_tag('v1.0', message='the first release\nwith notes')
    assert (tag.name, tag.commit, tag.message) == ('v1.0', second, 'the first release\nwith notes')
    assert (tag.tagger, tag.email) == (USER['user_name'], USER['user_email'])
    assert before - 1 <= tag.time <= time.time() + 1 and len(tag.record) == 64
    assert repo.get_tag('v1.0') == tag
    change(repo, 'master', 1, 'one', 'third')  # the branch moves on, the tag does not
    with closing(repo.checkout(commit='v1.0')) as co:
        assert co.commit_hash == second and co['labels'][0] == 'zero' and co['labels'][1] == '1'
        assert co.branch_name is None
    assert repo.diff('v1.0', 'master').columns['labels'].mutated == {1}


def test_tags_at_a_commit_prefix_are_listed_in_order(two_commits: tuple[Repository, str, str]) -> None:
    repo, first, second = two_commits
    repo.create_tag('b-tag', commit=first[:8])
    repo.create_tag('a-tag', commit='master')
    assert repo.list_tags() == ['a-tag', 'b-tag']
    assert repo.get_tag('b-tag').commit == first and repo.get_tag('a-tag').commit == second
    assert repo.get_tag('b-tag').message == ''
    assert Repository(repo.path).list_tags() == ['a-tag', 'b-tag']  # stored, not cached
    repo.verify_repo_integrity()


def test_removing_a_tag(two_commits: tuple[Repository, str, str]) -> None:
    repo, first, _ = two_commits
    repo.create_tag('old', commit=first)
    gone = repo.remove_tag('old')
    assert gone.name == 'old' and gone.commit == first
    assert repo.list_tags() == []
    with pytest.raises(RefNotFound, match="no branch, tag or commit named 'old'"):
        repo.checkout(commit='old')
    with pytest.raises(RefNotFound, match="no tag named 'old'"):
        repo.remove_tag('old')
    assert repo.create_tag('old').commit != first  # the name is free again


def test_a_tag_that_exists(two_commits: tuple[Repository, str, str]) -> None:
    repo, first, second = two_commits
    repo.create_tag('v1', commit=first)
    with pytest.raises(TagExists, match="tag 'v1' exists already; tags never move"):
        repo.create_tag('v1', commit=second)
    assert repo.get_tag('v1').commit == first


@pytest.mark.parametrize('name', ['', '.hidden', 'a b', 'v1/2', 'ü', 5])
def test_tag_names_follow_the_branch_name_rules(two_commits: tuple[Repository, str, str], name: Any) -> None:
    repo, _, _ = two_commits
    with pytest.raises(InvalidKey, match='tag name'):
        repo.create_tag(name)
    assert repo.list_tags() == []


def test_a_tag_may_not_take_a_branch_name(two_commits: tuple[Repository, str, str]) -> None:
    repo, first, _ = two_commits
    repo.create_branch('dev', base_commit=first)
    with pytest.raises(InvalidKey, match="tag name 'dev' is the name of a branch"):
        repo.create_tag('dev')


def test_a_tag_needs_a_commit(two_commits: tuple[Repository, str, str]) -> None:
    repo, _, _ = two_commits
    with pytest.raises(RefNotFound):
        repo.create_tag('v1', commit='deadbeef')
    with pytest.raises(RefNotFound, match='no tag named'):
        repo.get_tag('nope')


def test_a_tag_in_an_empty_repository(tmp_path: Any) -> None:
    repo = Repository(tmp_path / 'empty', exists=False)
    repo.init(**USER)
    with pytest.raises(RefNotFound, match='no commits yet'):
        repo.create_tag('v1')


# ---------------------------------------------------------------------------------------- log


def graph_of(repo: Repository, capsys: Any, **options: Any) -> list[str]:
    capsys.readouterr()
    repo.log(graph=True, **options)
    return capsys.readouterr().out.splitlines()


def test_the_log_graph_of_a_merge(two_commits: tuple[Repository, str, str], capsys: Any) -> None:
    repo, first, second = two_commits
    repo.create_branch('relabel')
    dev = change(repo, 'relabel', 3, 'three', 'fix label 3')
    dev_time = repo.log(branch='relabel', return_contents=True)['specs'][dev]['commit_time']  # type: ignore[index]
    wait_until(lambda: time.time() > dev_time, what='the clock to pass the time of the commit on relabel')
    master = change(repo, 'master', 4, 'four', 'change 4')
    merged = repo.merge('merge relabel\n\nwith a body', dev_branch='relabel')
    repo.create_tag('v1.0', commit=first)
    lines = graph_of(repo, capsys)
    names = {first: 'FIRST', second: 'SECOND', dev: 'DEV', master: 'MASTER', merged: 'MERGED'}
    text = '\n'.join(lines)
    for digest, name in names.items():
        text = text.replace(digest[:12], name)
    assert text.splitlines() == [
        '*   MERGED (HEAD -> master) merge relabel',  # HEAD: the writer's branch, as git prints it
        '|\\',
        '* | MASTER change 4',
        '| * DEV (relabel) fix label 3',
        '|/',
        '* SECOND second',
        '* FIRST (tag: v1.0) first',
    ]
    # the relabel branch alone is a straight line
    dev_lines = graph_of(repo, capsys, branch='relabel')
    assert [re.sub('[0-9a-f]{12}', 'C', line) for line in dev_lines] == [
        '* C (relabel) fix label 3',
        '* C second',
        '* C (tag: v1.0) first',
    ]


def test_the_log_graph_of_two_merges(two_commits: tuple[Repository, str, str], capsys: Any) -> None:
    repo, _, _ = two_commits
    repo.create_branch('a')
    repo.create_branch('b')
    change(repo, 'a', 1, 'a', 'on a')
    change(repo, 'b', 2, 'b', 'on b')
    change(repo, 'master', 3, 'm', 'on master')
    repo.merge('merge a', dev_branch='a')
    repo.merge('merge b', dev_branch='b')
    lines = [re.sub('[0-9a-f]{12}', 'C', line) for line in graph_of(repo, capsys)]
    # every commit once; every row's lanes are drawn with | \ / and * only
    assert sum(line.count('*') for line in lines) == 7
    assert all(re.fullmatch(r'[ *|\\/]*( C.*)?', line) for line in lines)
    assert lines[0].startswith('*   C (HEAD -> master) merge b') and lines[-1] == '* C first'


def test_log_return_contents_is_kept(two_commits: tuple[Repository, str, str]) -> None:
    repo, first, second = two_commits
    info = repo.log(return_contents=True)
    assert info is not None
    assert info['head'] == second and info['order'] == [second, first]
    assert info['ancestors'] == {second: [first], first: ['']}
    assert info['specs'][second]['commit_message'] == 'second'
    assert info['branch_heads'] == {second: ['master']}


def test_log_of_an_empty_repository(repo: Repository, capsys: Any) -> None:
    assert graph_of(repo, capsys) == ['(no commits yet)']


# ---------------------------------------------------------------------------------------- reset


def test_reset_discards_staged_changes(two_commits: tuple[Repository, str, str]) -> None:
    repo, _, second = two_commits
    with closing(repo.checkout(write=True)) as co:
        with pytest.raises(NothingStaged, match='No changes made in staging area'):
            co.reset_staging_area()  # as in Hangar: nothing to reset is an error ...
        assert co.reset_staging_area(force=True) == second  # ... unless force=True
        co['labels'][5] = 'staged'
        co.metadata['k'] = 'v'
        assert co['labels'][5] == 'staged' and co.diff.status() == 'DIRTY'
        assert co.reset_staging_area() == second
        assert co['labels'][5] == '5' and 'k' not in co.metadata and co.diff.status() == 'CLEAN'
    with closing(repo.checkout(write=True)) as co:
        assert co.diff.status() == 'CLEAN'
