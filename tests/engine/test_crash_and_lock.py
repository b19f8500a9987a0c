"""Crashes and the writer lock, with real processes: writers killed with SIGKILL at random moments.

After any kill the repository must open, verify, hold every commit the writer reported, keep every
write the writer reported as durable, and have its writer lock free.
"""

from __future__ import annotations

import random
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from hangarfs import Repository, WriterLockHeld
from tests.helpers import Children


def small_value(key: int) -> np.ndarray:
    return np.random.default_rng(key).integers(0, 256, 256, dtype=np.uint8)


def big_value(key: int) -> np.ndarray:
    return np.random.default_rng(key).random((64, 64), dtype=np.float32)  # 16 KiB


# The writer child: ingests forever in rounds of plain writes, a with-block over two columns, now and
# then a bulk write large enough to go to a collection file, and a commit. It reports each write once
# the call (or block) has returned, and each commit once commit() has returned.
INGEST = """
    import sys
    import numpy as np
    from hangarfs import Repository
    from tests.engine.test_crash_and_lock import big_value, small_value

    co = Repository(sys.argv[1]).checkout(write=True)
    small, big = co['small'], co['big']
    key = max([-1, *small.keys(), *big.keys()]) + 1
    rnd = 0
    while True:
        for _ in range(5):
            small[key] = small_value(key)
            print('W', key, flush=True)
            key += 1
        block = []
        with small, big:
            for _ in range(5):
                small[key] = small_value(key)
                big[key] = big_value(key)
                block.append(key)
                key += 1
        print('B', *block, flush=True)
        if rnd % 3 == 2:
            keys = list(range(key, key + 80))  # 1.3 MB: goes to an .h5 collection file
            big.update_batch(keys, np.stack([big_value(k) for k in keys]))
            print('U', *keys, flush=True)
            key += 80
        print('C', co.commit(f'round {rnd}'), flush=True)
        rnd += 1
"""


@dataclass
class Reported:
    """What a killed child said it had done, in order."""

    durable: dict[str, set[int]] = field(default_factory=lambda: {'small': set(), 'big': set()})
    commits: list[tuple[str, dict[str, set[int]]]] = field(default_factory=list)

    def add(self, line: str) -> None:
        kind, *rest = line.split()
        if kind == 'W':
            self.durable['small'].add(int(rest[0]))
        elif kind == 'B':
            self.durable['small'].update(map(int, rest))
            self.durable['big'].update(map(int, rest))
        elif kind == 'U':
            self.durable['big'].update(map(int, rest))
        elif kind == 'C':
            self.commits.append((rest[0], {c: set(keys) for c, keys in self.durable.items()}))


def make_ingest_repository(path: Path) -> Repository:
    repo = Repository(path, exists=False)
    repo.init(user_name='Ada', user_email='ada@example.org')
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('small', shape=(256,), dtype=np.uint8, backend='numpy')
        co.add_ndarray_column('big', shape=(64, 64), dtype=np.float32, backend='hdf5')
        co.metadata['purpose'] = 'crash test'
        co.commit('empty columns')
    return repo


def run_and_kill(children: Children, code: str, path: str, *, after_commits: int, delay: float) -> list[str]:
    """Start a writer child, SIGKILL it ``delay`` seconds after its ``after_commits``-th commit."""
    child = children.start(code, path)
    assert child.stdout is not None
    lines = []
    commits = 0
    while commits < after_commits:
        line = child.stdout.readline()
        if not line:
            raise AssertionError(f'writer child died early:\n{child.stderr.read() if child.stderr else ""}')
        lines.append(line)
        commits += line.startswith('C ')
    time.sleep(delay)  # not a wait for anything: the kill lands at a random moment of the child's work
    children.kill(child)
    lines.extend(child.stdout.read().splitlines(keepends=True))
    return [line.rstrip('\n') for line in lines if line.endswith('\n')]  # only whole lines were reported


def assert_recovered(repo: Repository, reported: Reported) -> None:
    """The repository after a kill: lock free, verifies, every reported commit and write is there."""
    assert not repo.writer_lock_held, 'a killed writer left the writer lock held'
    report = repo.verify_report()
    assert report.ok
    history = repo.log(return_contents=True)
    assert history is not None
    commits = [c for c, _ in reported.commits]
    assert [c for c in history['order'] if c in commits] == commits[::-1], 'a reported commit is missing'
    for digest, keys in reported.commits:
        with closing(repo.checkout(commit=digest)) as co:
            for column in ('small', 'big'):
                present = set(co[column].keys())
                assert keys[column] <= present, f'{column}: a commit lacks writes reported before it'
                # beyond those, only writes a killed writer staged without reporting them, which the next
                # writer committed: keys no writer ever reported
                assert not (present - keys[column]) & reported.durable[column]
    if reported.commits:
        last, _ = reported.commits[-1]
        with closing(repo.checkout(commit=last)) as co:
            for key, value in co['small'].items():
                assert np.array_equal(value, small_value(key)), key
            for key, value in co['big'].items():
                assert np.array_equal(value, big_value(key)), key
    with closing(repo.checkout(write=True)) as co:  # the writer sees the head plus every durable staged write
        for column, value_of in (('small', small_value), ('big', big_value)):
            present = set(co[column].keys())
            missing = reported.durable[column] - present
            assert not missing, f'{column}: writes reported durable are gone: {sorted(missing)[:10]}'
            for key in present - reported.durable[column]:  # unreported writes may have landed, intact
                assert np.array_equal(co[column][key], value_of(key))


@pytest.mark.parametrize('seed', [1, 2, 3])
def test_a_writer_killed_mid_ingest_leaves_a_sound_repository(
    tmp_path: Path, children: Children, seed: int
) -> None:
    rng = random.Random(seed)
    repo = make_ingest_repository(tmp_path / 'repo')
    lines = run_and_kill(
        children, INGEST, repo.path, after_commits=rng.randint(2, 4), delay=rng.uniform(0, 0.25)
    )
    reported = Reported()
    for line in lines:
        reported.add(line)
    assert len(reported.commits) >= 2
    assert_recovered(repo, reported)

    # and the next writer carries on where the killed one stopped
    lines = run_and_kill(children, INGEST, repo.path, after_commits=1, delay=rng.uniform(0, 0.1))
    for line in lines:
        reported.add(line)
    assert_recovered(repo, reported)


SMALL_COMMITS = """
    import sys
    import numpy as np
    from hangarfs import Repository

    co = Repository(sys.argv[1]).checkout(write=True)
    col = co['c']
    key = max([-1, *col.keys()]) + 1
    while True:
        col[key] = np.full(64, key % 256, np.uint8)
        print('C', key, co.commit(f'key {key}'), flush=True)
        key += 1
"""


def test_writers_killed_during_small_commits(tmp_path: Path, children: Children) -> None:
    rng = random.Random(20240601)
    repo = Repository(tmp_path / 'repo', exists=False)
    repo.init(user_name='Ada', user_email='ada@example.org')
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('c', shape=(64,), dtype=np.uint8)
    done: list[tuple[int, str]] = []
    for _ in range(6):
        lines = run_and_kill(children, SMALL_COMMITS, repo.path, after_commits=3, delay=rng.uniform(0, 0.03))
        done += [(int(k), d) for _, k, d in (line.split() for line in lines)]
        assert not repo.writer_lock_held
        repo.verify_repo_integrity()
        head = repo.store.refs.branch_head('master')
        assert head == done[-1][1] or repo.store.objects.commit(head).parents == (done[-1][1],), (
            'the branch head is neither the last reported commit nor one commit after it'
        )
    history = repo.log(return_contents=True)
    assert history is not None
    assert set(d for _, d in done) <= set(history['order'])
    for key, digest in done[:: max(1, len(done) // 6)] + done[-1:]:
        with closing(repo.checkout(commit=digest)) as co:
            assert list(co['c'].keys()) == list(range(key + 1)), 'a commit is not all or nothing'
            assert all(int(v[0]) == k % 256 for k, v in co['c'].items())


# ---------------------------------------------------------------------------------------- the lock

HOLD = """
    import sys
    from hangarfs import Repository
    co = Repository(sys.argv[1]).checkout(write=True)
    print('holding', flush=True)
    sys.stdin.read()
"""


def test_a_killed_writer_never_leaves_the_lock_held(repo: Repository, children: Children) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')['k'] = 'v'
        co.commit('c')
    for _ in range(3):
        holder = children.start(HOLD, repo.path)
        children.expect_line(holder, 'holding')
        assert repo.writer_lock_held
        with pytest.raises(WriterLockHeld, match=f'pid {holder.pid} '):
            repo.checkout(write=True)
        children.kill(holder)
        assert not repo.writer_lock_held
        with closing(repo.checkout(write=True)) as co:  # at once, no waiting and no clean-up step
            co['s']['k'] = 'changed'
            co['s']['k'] = 'v'


def test_readers_need_no_lock(repo: Repository, children: Children) -> None:
    """A reader in another process works while this process holds the writer and commits."""
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')['k'] = 'first'
        co.commit('first')
    writer = repo.checkout(write=True)
    try:
        reader = children.start(
            """
            from contextlib import closing
            import sys
            from hangarfs import Repository
            repo = Repository(sys.argv[1])
            for line in sys.stdin:
                with closing(repo.checkout()) as co:
                    print('read', co['s', 'k'], repo.writer_lock_held, flush=True)
            """,
            repo.path,
        )
        assert reader.stdin is not None
        reader.stdin.write('go\n')
        reader.stdin.flush()
        assert children.expect_line(reader, 'read') == 'read first True'
        writer['s']['k'] = 'second'
        writer.commit('second')
        reader.stdin.write('go\n')
        reader.stdin.flush()
        assert children.expect_line(reader, 'read') == 'read second True'
        reader.stdin.close()
        assert reader.wait(timeout=30) == 0
    finally:
        writer.close()


# ---------------------------------------------------------------------------------------- durability


def test_a_plain_write_is_durable_when_the_call_returns(repo: Repository, children: Children) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('x', shape=(100,), dtype=np.int64)
        co.add_str_column('s')['committed'] = 'yes'
        co.commit('columns')
    child = children.start(
        """
        import sys
        import numpy as np
        from hangarfs import Repository
        co = Repository(sys.argv[1]).checkout(write=True)
        co['x'][7] = np.arange(100)
        co['s']['plain'] = 'written'
        del co['s']['committed']
        with co['s']:
            co['s']['block'] = 'written in a block'
        print('written', flush=True)
        with co['s']:
            co['s']['unfinished'] = 'inside a block that never exits'
            print('inside', flush=True)
            sys.stdin.read()
        """,
        repo.path,
    )
    children.expect_line(child, 'inside')
    children.kill(child)
    repo.verify_repo_integrity()
    with closing(repo.checkout(write=True)) as co:
        assert np.array_equal(co['x', 7], np.arange(100))
        assert co['s', 'plain'] == 'written' and co['s', 'block'] == 'written in a block'
        assert 'committed' not in co['s']
        assert len(co['s']) == len(list(co['s'].keys()))
        co.commit('what the killed writer staged')
    with closing(repo.checkout()) as co:
        assert co['s', 'plain'] == 'written' and np.array_equal(co['x', 7], np.arange(100))


def test_a_reopened_writer_recovers_a_commit_cut_off_before_staging_was_cleared(repo: Repository) -> None:
    """Step 4 of a commit (clearing the staging area) may never run; the next writer finishes it."""
    from hangarfs.engine.commit import build_snapshot, write_commit
    from hangarfs.engine.staging import StagingArea

    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')['a'] = 'one'
        co.commit('one')
        co['s']['b'] = 'two'
    store = repo.store
    staging = StagingArea(store)
    info = staging.info()
    snapshot, nodes = build_snapshot(store, staging, store.objects.snapshot(info.base))
    digest = write_commit(  # steps 1-3 of commit_staging, as a process killed before step 4 leaves them
        store,
        branch=info.branch,
        expected_head=info.base,
        parents=(info.base,),
        snapshot=snapshot,
        nodes=nodes,
        message='two',
        author='Ada',
        email='ada@example.org',
        inline_locations=staging.inline_locations(),
        staging_generation=info.generation,
    )
    assert staging.is_dirty()
    with closing(repo.checkout(write=True)) as co:
        assert not staging.is_dirty() and co.commit_hash == digest
        assert dict(co['s'].items()) == {'a': 'one', 'b': 'two'}
        co['s']['c'] = 'three'
        co.commit('three')
    repo.verify_repo_integrity()


def test_a_new_writer_removes_data_files_a_killed_writer_left_unfinished(tmp_path: Path) -> None:
    repo = Repository(tmp_path / 'repo', exists=False)
    repo.init(user_name='Ada', user_email='ada@example.org')
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')[0] = 'x'
        co.commit('one')
    leftover = Path(repo.path) / '.hangarfs' / 'data' / '00' / '.0123456789abcdef.tmp'
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b'half a file')
    with closing(repo.checkout()):  # readers leave it alone: they never write data files
        pass
    assert leftover.exists()
    with closing(repo.checkout(write=True)):
        assert not leftover.exists()
