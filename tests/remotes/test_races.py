"""Racing compare-and-swap updates of the remote refs: many threads, and several processes.

Every round, all racers read the same refs, then all try to move them: exactly one wins, every
other gets RemoteRefMoved. As a counter (read, then write value + 1, retried on RemoteRefMoved), the
final value equals the number of successful updates: zero lost updates.
"""

from __future__ import annotations

import json
import threading

import pytest

from hangarfs.errors_remote import RemoteRefMoved
from tests.helpers import Children
from tests.remotes.conftest import RemoteSpec
from tests.remotes.helpers import increment

THREADS = 12
ROUNDS = 8


def test_threads_racing_each_round_have_exactly_one_winner(remote_spec: RemoteSpec) -> None:
    remote_spec.open(create=True).close()
    remotes = [remote_spec.open() for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    read = threading.Barrier(THREADS)
    winners = [[] for _ in range(ROUNDS)]  # type: list[list[int]]
    losers = [0] * ROUNDS
    errors: list[BaseException] = []
    lock = threading.Lock()

    def racer(me: int) -> None:
        try:
            for rnd in range(ROUNDS):
                start.wait()
                snap = remotes[me].read_refs()
                read.wait()  # everyone has read the same version before anyone writes
                try:
                    remotes[me].update_refs(snap, branches={'master': f'{rnd:02d}{me:02d}'}, tags={})
                    with lock:
                        winners[rnd].append(me)
                except RemoteRefMoved:
                    with lock:
                        losers[rnd] += 1
        except BaseException as err:
            errors.append(err)
            start.abort()
            read.abort()

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert [len(w) for w in winners] == [1] * ROUNDS
    assert losers == [THREADS - 1] * ROUNDS
    final = remotes[0].read_refs()
    assert final.generation == ROUNDS
    assert final.branches['master'] == f'{ROUNDS - 1:02d}{winners[-1][0]:02d}'
    log = remotes[0].refs_log()
    assert [s.generation for s in log] == list(range(ROUNDS - 1, 0, -1))  # every version kept
    assert [s.branches['master'] for s in reversed(log)] == [
        f'{r:02d}{w[0]:02d}' for r, w in enumerate(winners[:-1])
    ]


def test_threads_incrementing_lose_no_update(remote_spec: RemoteSpec) -> None:
    remote_spec.open(create=True).close()
    per_thread = 6
    conflicts = [0] * THREADS

    def worker(i: int) -> None:
        conflicts[i] = increment(remote_spec.open(), per_thread)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    final = remote_spec.open().read_refs()
    assert int(final.tags['counter']) == THREADS * per_thread
    assert final.generation == THREADS * per_thread
    assert sum(conflicts) > 0  # they did race


CHILD = """
import json, sys
from hangarfs.backends.remote_repo import open_remote
from hangarfs.backends.objstore import RetryPolicy
from tests.remotes.helpers import increment
spec = json.loads(sys.argv[1])
remote = open_remote(spec['url'], retry=RetryPolicy(attempts=5, initial_backoff=0.05), **spec['options'])
print('READY', flush=True)
sys.stdin.readline()  # start together
print('CONFLICTS', increment(remote, int(sys.argv[2])), flush=True)
"""


@pytest.mark.timeout(120)
def test_processes_incrementing_lose_no_update(remote_spec: RemoteSpec, children: Children) -> None:
    remote_spec.open(create=True).close()
    options = {k: v for k, v in remote_spec.options.items() if k != 'retry'}
    spec = json.dumps({'url': remote_spec.url, 'options': options})
    per_process, n = 6, 4
    procs = [children.start(CHILD, spec, str(per_process)) for _ in range(n)]
    for p in procs:
        children.expect_line(p, 'READY')
    for p in procs:
        assert p.stdin is not None
        p.stdin.write('go\n')
        p.stdin.flush()
    for p in procs:
        children.expect_line(p, 'CONFLICTS')
    for p in procs:
        assert p.wait(timeout=60) == 0
    final = remote_spec.open().read_refs()
    assert int(final.tags['counter']) == n * per_process
    assert final.generation == n * per_process
