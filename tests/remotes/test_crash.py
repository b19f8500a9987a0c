"""SIGKILL of an uploading process between each step of the commit protocol, then a second upload.

The child uploads data packs (an index every two packs), meta packs, a commit object, then moves
the refs, stopping at a checkpoint after every step. For each checkpoint, one child is killed there.
The remote must then be consistent (fsck: no problem; refs name nothing that is missing; indexes name
only packs that exist), and a second upload of the same content must complete, re-using every blob
an index already names, and leave the remote complete.
"""

from __future__ import annotations

import json

import pytest

from hangarfs.backends.packs import build_packs
from hangarfs.backends.remote_repo import RemoteRepo
from tests.helpers import Children
from tests.remotes.conftest import RemoteSpec
from tests.remotes.helpers import CRASH_COMMIT, CRASH_PACK_SIZE, blob_set, crash_content, crash_upload

CHILD = """
import json, sys
from hangarfs.backends.remote_repo import open_remote
from tests.remotes.helpers import CRASH_PACK_SIZE, crash_upload
spec = json.loads(sys.argv[1])
remote = open_remote(spec['url'], create=True, pack_size=CRASH_PACK_SIZE, **spec['options'])

def checkpoint(name):
    print('AT', name, flush=True)
    sys.stdin.readline()

crash_upload(remote, checkpoint)
print('DONE', flush=True)
"""


def _spec(remote_spec: RemoteSpec) -> str:
    options = {k: v for k, v in remote_spec.options.items() if k != 'retry'}
    return json.dumps({'url': remote_spec.url, 'options': options})


def _checkpoints() -> list[str]:
    """The checkpoints of a whole upload, in order (the packs come out the same every time)."""
    data, meta = crash_content()
    n_data = len(list(build_packs('images', data, CRASH_PACK_SIZE)))
    n_meta = len(list(build_packs('meta', meta, CRASH_PACK_SIZE)))
    return (
        ['data-pack'] * n_data
        + ['data-indexed']
        + ['meta-pack'] * n_meta
        + ['meta-indexed', 'commit', 'refs']
    )


def _assert_consistent(remote: RemoteRepo) -> None:
    report = remote.fsck()
    assert report.ok, report.problems
    refs = remote.read_refs()
    if refs.exists:  # the refs name a commit only once everything before it is there
        assert dict(refs.branches) == {'master': CRASH_COMMIT}
        assert remote.get_commit(CRASH_COMMIT) == b'the commit record'
        data, meta = crash_content()
        assert not remote.known_digests(refresh=True).missing([d for d, _ in data + meta])


@pytest.mark.timeout(300)
def test_sigkill_between_every_step_then_resume(remote_spec: RemoteSpec, children: Children) -> None:
    steps = _checkpoints()
    assert steps.count('data-pack') >= 3
    data, meta = crash_content()
    killed = [f'{remote_spec.url}-kill{n}' for n in range(len(steps))]
    procs = [
        children.start(CHILD, _spec(RemoteSpec(remote_spec.kind, url, remote_spec.options))) for url in killed
    ]
    for n, proc in enumerate(procs):  # drive child n to checkpoint n, then SIGKILL it there
        assert proc.stdin is not None
        for i in range(n + 1):
            assert children.expect_line(proc, 'AT').split()[1] == steps[i]
            if i < n:
                proc.stdin.write('\n')
                proc.stdin.flush()
        children.kill(proc)

    for step, url in zip(steps, killed):
        spec = RemoteSpec(remote_spec.kind, url, remote_spec.options)
        remote = spec.open()
        _assert_consistent(remote)
        indexed_before = len(remote.known_digests(refresh=True))
        if remote.read_refs().exists:
            assert step == 'refs'
        else:
            report = crash_upload(spec.open(pack_size=CRASH_PACK_SIZE), lambda name: None)
            assert report.blobs_skipped == min(indexed_before, len(data)), (step, report, indexed_before)
            assert report.blobs_written == len(data) - report.blobs_skipped
        final = spec.open()
        _assert_consistent(final)
        assert dict(final.read_refs().branches) == {'master': CRASH_COMMIT}
        assert {d: bytes(b) for d, b in final.read_group('images')} == dict(data)
        assert {d: bytes(b) for d, b in final.read_meta()} == dict(meta)


def test_orphan_packs_of_an_interrupted_upload_are_adopted(
    remote: RemoteRepo, remote_spec: RemoteSpec
) -> None:
    """Packs that arrived after the last index are found by their footers, so that not even they
    are sent again."""
    data = blob_set(100, 1000)
    packs = list(build_packs('images', data, 32 * 1024))
    assert len(packs) > 3
    for p in packs[:3]:  # what an upload killed before its index leaves behind
        remote.store.put_create(f'data/images/{p.name}', p.data)
    report = remote.fsck()
    assert report.ok and len(report.orphan_packs) == 3
    adopted = remote.recover_orphans()
    assert sorted(p.key for p in adopted) == sorted(f'data/images/{p.name}' for p in packs[:3])
    remote.store.stats.reset()
    rep = remote.write_data_packs('images', data)
    assert rep.blobs_skipped == sum(len(p.table) for p in packs[:3])
    assert remote.fsck().orphan_packs == ()
    assert {d: bytes(b) for d, b in remote_spec.open().read_group('images')} == dict(data)
