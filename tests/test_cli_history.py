"""The history commands of the CLI (issue 3), run as a user runs them: real `hangarfs` processes.

diff, merge, tag, log --graph, reset --hard and checkout. Exit status 0 on success; otherwise 1 and one
line on stderr that says what was wrong.
"""

from __future__ import annotations

import json
import re
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from hangarfs import Repository
from tests.helpers import HANGARFS, hangarfs_fails, new_repository
from tests.helpers import hangarfs_ok as hangarfs


@pytest.fixture
def branched(repo_path: Path) -> tuple[Path, Repository]:
    """master with labels 0..19 and a nested column; dev changed 3 labels; master changed 1 other."""
    repo = new_repository(repo_path)
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('labels').update({i: str(i) for i in range(20)})
        co.add_str_column('scans', contains_subsamples=True)['p1'] = {'axial': 'a'}
        co.commit('first')
    repo.create_branch('dev')
    with closing(repo.checkout(write=True, branch='dev')) as co:
        co['labels'].update({1: 'one', 2: 'two'})
        del co['labels'][3]
        co['labels']['new'] = 'x'
        co['scans']['p1', 'coronal'] = 'c'
        co.metadata['by'] = 'dev'
        co.commit('relabel on dev')
    with closing(repo.checkout(write=True, branch='master')) as co:
        co['labels'][10] = 'ten'
        co.commit('change 10 on master')
    return repo_path, repo


def test_diff_summary_keys_and_json(branched: tuple[Path, Repository]) -> None:
    path, repo = branched
    out = hangarfs(path, 'diff', 'master', 'dev')
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    assert out.splitlines()[0].startswith('diff master (') and ') -> dev (' in out.splitlines()[0]
    assert rows['labels'] == ['1', '1', '3'] and rows['scans'] == ['1', '0', '0']
    assert rows['(metadata)'] == ['1', '0', '0']
    keys = hangarfs(path, 'diff', 'master', 'dev', '--keys')
    assert "labels added: 'new'" in keys and 'labels deleted: 3' in keys
    assert 'labels mutated: 1 2 10' in keys and "scans added: 'p1'/'coronal'" in keys
    assert "(metadata) added: 'by'" in keys
    as_json = json.loads(hangarfs(path, 'diff', 'master', 'dev', '--json'))
    assert as_json == repo.diff('master', 'dev').to_dict()
    assert as_json['columns']['scans']['added'] == [['p1', 'coronal']]


def test_diff_against_the_writers_branch(branched: tuple[Path, Repository]) -> None:
    path, repo = branched
    first = repo.log(branch='master', return_contents=True)['order'][-1]  # type: ignore[index]
    out = hangarfs(path, 'diff', first[:10])  # to master, the writer's branch
    assert f'diff {first[:10]} ({first[:12]}) -> master' in out and re.search(r'labels +0 +0 +1', out)
    assert 'no differences' in hangarfs(path, 'diff', 'master', 'master')


def test_diff_of_unknown_refs(branched: tuple[Path, Repository]) -> None:
    path, _ = branched
    assert hangarfs_fails(path, 'diff', 'master', 'nope') == (
        "hangarfs: error: no branch, tag or commit named 'nope'"
    )


def test_merge_three_way_then_fast_forward(branched: tuple[Path, Repository]) -> None:
    path, repo = branched
    out = hangarfs(path, 'merge', 'dev')
    head = repo.store.refs.branch_head('master')
    assert out.strip() == f'merged dev into master: {head}'
    rec = repo.store.objects.commit(head)  # type: ignore[arg-type]
    assert rec.message == 'Merge dev into master' and len(rec.parents) == 2
    assert 'already contains dev' in hangarfs(path, 'merge', 'dev')
    hangarfs(path, 'checkout', 'dev')
    assert hangarfs(path, 'merge', 'master').strip() == f'fast-forwarded dev to master ({head[:12]})'  # type: ignore[index]
    graph = hangarfs(path, 'log', '--graph')
    assert graph.splitlines()[0].startswith(f'*   {head[:12]} (HEAD -> dev, master) Merge dev into master')  # type: ignore[index]
    assert graph.splitlines()[1] == '|\\'


def test_merge_conflicts_and_strategies(branched: tuple[Path, Repository]) -> None:
    path, repo = branched
    with closing(repo.checkout(write=True)) as co:
        co['labels'][1] = 'master one'
        co.commit('conflicting change')
    before = repo.store.refs.branch_head('master')
    err = hangarfs_fails(path, 'merge', 'dev', '-m', 'try')
    assert "merging 'dev' into 'master' found 1 conflict(s): column 'labels' key 1: mutate/mutate" in err
    assert repo.store.refs.branch_head('master') == before
    hangarfs(path, 'merge', 'dev', '-m', 'take theirs', '--strategy', 'theirs')
    with closing(repo.checkout()) as co:
        assert co['labels'][1] == 'one' and co['labels'][10] == 'ten'
    bad = subprocess.run(
        [HANGARFS, '-C', str(path), 'merge', 'dev', '--strategy', 'mine'], capture_output=True
    )
    assert bad.returncode == 2 and b"'mine' is not one of 'ours', 'theirs'" in bad.stderr


def test_merge_refusals(branched: tuple[Path, Repository]) -> None:
    path, repo = branched
    assert 'cannot merge branch' in hangarfs_fails(path, 'merge', 'master')
    assert "no branch, tag or commit named 'nope'" in hangarfs_fails(path, 'merge', 'nope')
    with closing(repo.checkout(write=True)) as co:
        co['labels'][0] = 'staged'
    assert 'Changes are currently pending in the staging area' in hangarfs_fails(path, 'merge', 'dev')


def test_tags(branched: tuple[Path, Repository]) -> None:
    path, repo = branched
    assert hangarfs(path, 'tag').strip() == 'no tags'
    master = repo.store.refs.branch_head('master') or ''
    dev = repo.store.refs.branch_head('dev') or ''
    assert hangarfs(path, 'tag', 'v1.0').strip() == f'tagged {master[:12]} as v1.0'
    hangarfs(path, 'tag', 'dev-1', 'dev', '-m', 'relabelled\nmore')
    assert hangarfs(path, 'tag').splitlines() == [
        f'dev-1                    {dev[:12]}  relabelled',
        f'v1.0                     {master[:12]}',
    ]
    assert "tag 'v1.0' exists already" in hangarfs_fails(path, 'tag', 'v1.0', 'dev')
    assert 'tag name' in hangarfs_fails(path, 'tag', 'bad name')
    assert '(dev, tag: dev-1) relabel on dev' in hangarfs(path, 'log', '--graph', 'dev')
    assert 'labels' in hangarfs(path, 'diff', 'v1.0', 'dev-1')
    assert hangarfs(path, 'tag', '-d', 'v1.0').strip() == f'deleted tag v1.0 (was {master[:12]})'
    assert "no tag named 'v1.0'" in hangarfs_fails(path, 'tag', '-d', 'v1.0')
    assert repo.list_tags() == ['dev-1']


def test_reset_and_checkout(branched: tuple[Path, Repository]) -> None:
    path, repo = branched
    dev = repo.store.refs.branch_head('dev') or ''
    with closing(repo.checkout(write=True)) as co:
        co['labels'][0] = 'staged'
    assert 'reset --hard' in hangarfs_fails(path, 'reset')
    assert "uncommitted changes on branch 'master'" in hangarfs_fails(path, 'checkout', 'dev')
    assert 'staging area reset to master at' in hangarfs(path, 'reset', '--hard')
    assert hangarfs(path, 'checkout', 'dev').strip() == f'the writer is on branch dev, at {dev[:12]}'
    assert hangarfs(path, 'status').startswith(f'On branch dev, at {dev[:12]}')
    assert "no branch named 'v1'" in hangarfs_fails(path, 'checkout', 'v1')
    with closing(repo.checkout(write=True, branch='dev')) as co:
        assert co['labels'][0] == '0'
