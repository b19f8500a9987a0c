"""Racing pushers: clones of one repository each commit something else on master and push at the same
moment. In every round exactly one push wins; every other gets "the remote branch moved: fetch,
merge, push" (or, when it read the refs after the winner moved them, a rejected non-fast-forward that
says the same), and nothing is lost: after fetch and merge, the next round starts from everyone's
work."""

from __future__ import annotations

import threading
from contextlib import closing
from pathlib import Path

from hangarfs import Repository
from hangarfs.errors_remote import PushRejected, RemoteRefMoved
from tests.helpers import new_repository
from tests.remotes.conftest import RepoRemote

PUSHERS = 4
ROUNDS = 3


def test_racing_pushers_one_winner_per_round(tmp_path: Path, repo_remote: RepoRemote) -> None:
    base = new_repository(tmp_path / 'base')
    with closing(base.checkout(write=True)) as co:
        co.add_str_column('notes')['start'] = 'start'
        co.commit('start')
    repo_remote.add_to(base)
    base.remote.push('origin', 'master')
    clones = []
    for i in range(PUSHERS):
        repo = Repository(tmp_path / f'c{i}', exists=False)
        repo.clone(f'P{i}', f'p{i}@example.org', repo_remote.url, **repo_remote.options)
        clones.append(repo)

    winners_by_round = []
    for rnd in range(ROUNDS):
        for i, repo in enumerate(clones):
            with closing(repo.checkout(write=True)) as co:
                co['notes'][f'r{rnd}-p{i}'] = f'round {rnd} by {i}'
                co['notes'][f'blob-r{rnd}-p{i}'] = 'x' * (1000 + i)  # some data to upload
                co.commit(f'round {rnd} by {i}')
        barrier = threading.Barrier(PUSHERS)
        outcome: dict[int, object] = {}

        def run(i: int, repo: Repository, barrier: threading.Barrier, outcome: dict[int, object]) -> None:
            barrier.wait()
            try:
                repo.remote.push('origin', 'master')
                outcome[i] = 'won'
            except (RemoteRefMoved, PushRejected) as err:
                outcome[i] = err

        threads = [threading.Thread(target=run, args=(i, r, barrier, outcome)) for i, r in enumerate(clones)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        winners = [i for i, o in outcome.items() if o == 'won']
        assert len(outcome) == PUSHERS and len(winners) == 1, outcome
        for i, o in outcome.items():
            if isinstance(o, RemoteRefMoved):
                assert 'the remote branch moved' in str(o) and 'Fetch, merge, then push again' in str(o)
            elif i not in winners:
                assert isinstance(o, PushRejected) and 'fetch, merge, push' in str(o), o
        winners_by_round.append(winners[0])
        for repo in clones:  # fetch, merge: the losers' work goes on top of the winner's
            repo.remote.fetch('origin', 'master')
            if repo.store.refs.branch_head('master') != repo.store.refs.branch_head('origin/master'):
                repo.merge('merge origin', 'master', 'origin/master')

    # nothing was lost: one after the other, each clone fetches, merges and pushes; then the remote
    # holds every note of every round, the winners' first
    for repo in clones:
        repo.remote.fetch('origin', 'master')
        if repo.store.refs.branch_head('master') != repo.store.refs.branch_head('origin/master'):
            repo.merge('merge origin', 'master', 'origin/master')
        repo.remote.push('origin', 'master')
    check = Repository(tmp_path / 'check', exists=False)
    check.clone('C', 'c@example.org', repo_remote.url, **repo_remote.options)
    check.remote.fetch_data('origin', branch='master')
    with closing(check.checkout()) as co:
        notes = dict(co['notes'].items())
    assert notes == {
        'start': 'start',
        **{f'r{r}-p{i}': f'round {r} by {i}' for r in range(ROUNDS) for i in range(PUSHERS)},
        **{f'blob-r{r}-p{i}': 'x' * (1000 + i) for r in range(ROUNDS) for i in range(PUSHERS)},
    }
