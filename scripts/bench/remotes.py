"""Remotes for users (issue 13, phase 2), side by side in one run against one local S3 server.

A moto S3 server runs in its own process on 127.0.0.1 (started and stopped here). Everything goes
through the code users run (``repo.remote.push``, ``Repository.clone``, ``fetch_data``,
``fetch_data_sample``, ``hangarfs mount --lazy``), beside the raw cost of moving the same bytes:

- **raw**: the images' bytes as plain 32 MiB objects with the same client (obstore), the same 4
  requests in flight: PUT from a local file (read included), GET into a local file (fsync included);
- **push** of ``--n`` MNIST-shaped samples (the Hangar anchor's data: images (784,) uint8, labels (1,)
  int64; labels are small enough to live in the trees), ratio = raw push time / push time;
- **clone** (history only), beside GETting the same metadata bytes as plain objects; target <= 5 s;
- **fetch of all data** (``fetch_data``) of a clone, ratio against raw GET; **fetch of 10k random
  samples** (``fetch_data_sample``) against GETting their bytes as one object;
- **lazy mount**: a fresh clone mounted ``--lazy``; the first read of ``--random-n`` random sample
  files (one process reading them one after the other), and a ``--big-mib`` MiB sample read front to
  back; beside the same reads through a normal mount of a clone whose data was fetched;
- **DVC** (``dvc[s3]``, in the ``bench`` extra: ``.venv/bin/pip install -e '.[bench]'``; ``--dvc``
  names another dvc command): ``dvc push`` and ``dvc pull`` of ``--dvc-n`` samples as ``.npy`` files
  into the same S3 server, beside hangarfs push and clone + fetch_data of the same samples; target:
  hangarfs >= 20x faster on both.

Output: a Markdown table, then ``=== remotes benchmark JSON ===`` and a JSON document (``--json FILE``
writes it too). Every phase uses its own bucket.

    .venv/bin/python scripts/bench/remotes.py --json /tmp/remotes.json            # 1M, ~10-15 min
    .venv/bin/python scripts/bench/remotes.py --n 20000 --dvc-n 2000 --big-mib 64 # smoke, ~1 min
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import benchlib as bl
import numpy as np
from remote_transport import MotoServer

from hangarfs import Repository

JSON_MARKER = '=== remotes benchmark JSON ==='
MiB = 1 << 20
OBJECT = 32 * MiB
CONCURRENCY = 4
KEYS = {'AWS_ACCESS_KEY_ID': 'bench', 'AWS_SECRET_ACCESS_KEY': 'bench', 'AWS_REGION': 'us-east-1'}


# ------------------------------------------------------------------------------------------ raw


class Raw:
    """Plain objects with obstore (the client hangarfs uses), ``CONCURRENCY`` requests in flight."""

    def __init__(self, endpoint: str, bucket: str) -> None:
        import obstore
        from obstore.store import S3Store

        self.obstore = obstore
        self.store = S3Store(
            bucket,
            endpoint=endpoint,
            access_key_id='bench',
            secret_access_key='bench',
            region='us-east-1',
            virtual_hosted_style_request=False,
            client_options={'allow_http': True},
        )

    def put_file(self, path: Path, prefix: str) -> tuple[float, int]:
        """Upload a local file as objects of ``OBJECT`` bytes: (seconds, bytes)."""
        size = path.stat().st_size
        offsets = list(range(0, size, OBJECT))

        def one(i: int) -> None:
            with open(path, 'rb') as fh:
                fh.seek(offsets[i])
                self.obstore.put(self.store, f'{prefix}/{i:06d}', fh.read(OBJECT))

        t0 = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(one, range(len(offsets))))
        return time.perf_counter() - t0, size

    def get_to_file(self, prefix: str, path: Path) -> tuple[float, int]:
        """Download every object under ``prefix`` into one local file, fsynced: (seconds, bytes)."""
        t0 = time.perf_counter()
        keys = sorted(m['path'] for chunk in self.obstore.list(self.store, prefix) for m in chunk)
        total = 0
        with open(path, 'wb') as fh, ThreadPoolExecutor(CONCURRENCY) as pool:
            for data in pool.map(lambda k: self.obstore.get(self.store, k).bytes(), keys):
                fh.write(data)
                total += len(data)
            fh.flush()
            os.fsync(fh.fileno())
        return time.perf_counter() - t0, total


# ------------------------------------------------------------------------------------------ helpers


def new_bucket(server: MotoServer) -> str:
    import boto3

    name = f'bench-{uuid.uuid4().hex[:10]}'
    boto3.client('s3', endpoint_url=server.endpoint, region_name='us-east-1').create_bucket(Bucket=name)
    return name


def build_repo(path: Path, images: np.ndarray, labels: np.ndarray) -> Repository:
    repo = Repository(path, exists=False)
    repo.init('Bench', 'bench@example.org', remove_old=True)
    with closing(repo.checkout(write=True)) as co:
        img = co.add_ndarray_column('images', shape=(784,), dtype=np.uint8)
        lab = co.add_ndarray_column('labels', shape=(1,), dtype=np.int64)
        for start in range(0, len(images), 100_000):
            keys = list(range(start, min(len(images), start + 100_000)))
            img.update_batch(keys, images[keys[0] : keys[-1] + 1])
            lab.update_batch(keys, labels[keys[0] : keys[-1] + 1])
        co.commit('ingest')
    return repo


def clone(path: Path, url: str, endpoint: str) -> tuple[float, Repository]:
    repo = Repository(path, exists=False)
    t, _ = bl.timed(lambda: repo.clone('Bench', 'bench@example.org', url, endpoint_url=endpoint))
    return t, repo


def row(
    rows: list[dict[str, Any]],
    name: str,
    seconds: float,
    raw: float | None,
    nbytes: int,
    *,
    target: float | None = None,
    limit: float | None = None,
    note: str = '',
    beside: str = 'raw',
) -> None:
    """One figure: hangarfs seconds, the seconds of what it is compared with (``beside``: the raw
    transfer, or DVC), payload bytes; ``target`` a minimum beside/hangarfs ratio, ``limit`` a maximum
    number of seconds."""
    ratio = raw / seconds if raw is not None and seconds > 0 else None
    verdict = None
    if target is not None and ratio is not None:
        verdict = ratio >= target
    if limit is not None:
        verdict = seconds <= limit
    r = {
        'figure': name,
        'hangarfs_s': seconds,
        'raw_s': raw,
        'beside': beside,
        'bytes': nbytes,
        'hangarfs_MBps': nbytes / seconds / 1e6 if seconds > 0 and nbytes else None,
        'raw_MBps': nbytes / raw / 1e6 if raw and nbytes else None,
        'ratio': ratio,
        'target': (f'>= {target}x' if target is not None else '') + (f'<= {limit} s' if limit else ''),
        'pass': verdict,
        'note': note,
    }
    rows.append(r)
    bl.log(
        f'{name}: {seconds:.2f} s'
        + (f' | raw {raw:.2f} s | {ratio:.2f}x' if raw is not None and ratio is not None else '')
        + (f' | {"PASS" if verdict else "MISS"}' if verdict is not None else '')
    )


def read_files(paths: list[Path]) -> float:
    t0 = time.perf_counter()
    for p in paths:
        with open(p, 'rb', buffering=0) as fh:
            while fh.read(1 << 20):
                pass
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------ phases


def phase_transfer(
    args: argparse.Namespace,
    server: MotoServer,
    work: Path,
    images: np.ndarray,
    labels: np.ndarray,
    rows: list[dict[str, Any]],
    details: dict[str, Any],
) -> Repository:
    """raw, push, clone, fetch all, fetch 10k random."""
    n = len(images)
    payload = work / 'payload.bin'
    payload.write_bytes(images.tobytes())
    raw = Raw(server.endpoint, new_bucket(server))
    raw_push, nbytes = raw.put_file(payload, 'images')
    raw_get, _ = raw.get_to_file('images', work / 'payload.back')
    (work / 'payload.back').unlink()

    bl.log(f'building the {n:,}-sample repository')
    t_build, src = bl.timed(lambda: build_repo(work / 'src', images, labels))
    details['build_s'] = t_build
    url = f's3://{new_bucket(server)}/team/mnist'
    src.remote.add('origin', url, endpoint_url=server.endpoint)
    t_push, _ = bl.timed(lambda: src.remote.push('origin', 'master'))
    rep = src.remote.last_report
    details['push'] = {'commits': rep.commits, 'samples': rep.samples, 'objects': rep.objects}
    row(rows, f'push {n:,} samples', t_push, raw_push, nbytes, target=0.8)

    from hangarfs.backends.remote_repo import open_remote

    with open_remote(url, endpoint_url=server.endpoint) as remote:
        meta = [i for i in remote.store.list('meta/')]
        meta_bytes = sum(i.size for i in meta)
        index_bytes = sum(i.size for i in remote.store.list('index/'))
        packs = remote.store.list('data/')
    details['remote'] = {
        'meta_packs': len(meta),
        'meta_bytes': meta_bytes,
        'index_bytes': index_bytes,
        'data_packs': len(packs),
        'data_bytes': sum(i.size for i in packs),
    }
    raw_meta = Raw(server.endpoint, new_bucket(server))
    (work / 'meta.bin').write_bytes(os.urandom(meta_bytes))
    raw_meta.put_file(work / 'meta.bin', 'meta')
    raw_meta_get, _ = raw_meta.get_to_file('meta', work / 'meta.back')
    t_clone, c1 = clone(work / 'clone-all', url, server.endpoint)
    row(
        rows,
        f'clone (history of {n:,} samples)',
        t_clone,
        raw_meta_get,
        meta_bytes,
        limit=5.0,
        note=f'{meta_bytes / 1e6:.1f} MB of tree nodes',
    )

    t_fetch, _ = bl.timed(lambda: c1.remote.fetch_data('origin', branch='master'))
    details['fetch_all'] = vars(c1.remote.last_report) if hasattr(c1.remote.last_report, '__dict__') else {}
    row(rows, f'fetch all data ({n:,} samples)', t_fetch, raw_get, nbytes, target=0.8)

    k = min(args.random_n, n)
    keys = sorted(np.random.default_rng(1).choice(n, k, replace=False).tolist())
    subset = work / 'subset.bin'
    subset.write_bytes(images[keys].tobytes())
    raw_small = Raw(server.endpoint, new_bucket(server))
    raw_small.put_file(subset, 'subset')
    raw_small_get, small_bytes = raw_small.get_to_file('subset', work / 'subset.back')
    _, c2 = clone(work / 'clone-random', url, server.endpoint)
    t_rand, _ = bl.timed(lambda: c2.remote.fetch_data_sample('origin', 'images', keys, branch='master'))
    row(rows, f'fetch {k:,} random samples', t_rand, raw_small_get, small_bytes)
    with closing(c2.checkout()) as co, closing(src.checkout()) as so:
        for key in keys[:: max(1, k // 50)]:
            assert (co['images'][key] == so['images'][key]).all()
    details['random_keys'] = k
    return c1


def phase_lazy(
    args: argparse.Namespace,
    server: MotoServer,
    work: Path,
    fetched: Repository,
    n: int,
    rows: list[dict[str, Any]],
    details: dict[str, Any],
) -> None:
    url = fetched.remote.list_all()[0].address
    mounts = bl.Mounts(bl.DEFAULT_HANGARFS)
    k = min(args.random_n, n)
    keys = np.random.default_rng(2).choice(n, k, replace=False).tolist()
    _, lazy_repo = clone(work / 'clone-lazy', url, server.endpoint)
    with mounts.mounted(Path(lazy_repo.path), work / 'mnt-lazy', '--ref', 'master', '--lazy'):
        t_lazy = read_files([work / 'mnt-lazy' / 'images' / f'{key}.npy' for key in keys])
    with mounts.mounted(Path(fetched.path), work / 'mnt-local', '--ref', 'master'):
        t_local = read_files([work / 'mnt-local' / 'images' / f'{key}.npy' for key in keys])
    row(
        rows,
        f'lazy mount: first read of {k:,} random files',
        t_lazy,
        None,
        k * (128 + 784),
        note=f'fetched local mount: {t_local:.2f} s ({t_local / t_lazy:.3f}x)',
    )
    details['lazy_random'] = {'lazy_s': t_lazy, 'local_mount_s': t_local}

    if not args.big_mib:
        return
    elems = args.big_mib * MiB // 4
    shape = (elems // (512 * 512), 512, 512)
    big = bl.smooth_volume(shape)
    repo = Repository(work / 'big-src', exists=False)
    repo.init('Bench', 'bench@example.org')
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('volume', shape=shape, dtype=np.float32)['scan'] = big
        co.commit('one big sample')
    del big
    big_url = f's3://{new_bucket(server)}/big'
    repo.remote.add('origin', big_url, endpoint_url=server.endpoint)
    t_push_big, _ = bl.timed(lambda: repo.remote.push('origin', 'master'))
    _, big_clone = clone(work / 'big-clone', big_url, server.endpoint)
    with mounts.mounted(Path(big_clone.path), work / 'mnt-big', '--ref', 'master', '--lazy'):
        t_big_lazy, nbytes = bl.read_whole(work / 'mnt-big' / 'volume' / 'scan.npy')
    t_fetch_big, _ = bl.timed(lambda: big_clone.remote.fetch_data('origin', branch='master'))
    with mounts.mounted(Path(big_clone.path), work / 'mnt-big-local', '--ref', 'master'):
        t_big_local, _ = bl.read_whole(work / 'mnt-big-local' / 'volume' / 'scan.npy')
    row(
        rows,
        f'lazy mount: {args.big_mib} MiB sample read front to back',
        t_big_lazy,
        None,
        nbytes,
        note=f'fetched local mount: {t_big_local:.2f} s; push {t_push_big:.1f} s, '
        f'fetch_data {t_fetch_big:.1f} s',
    )
    details['lazy_big'] = {
        'lazy_s': t_big_lazy,
        'local_mount_s': t_big_local,
        'push_s': t_push_big,
        'fetch_s': t_fetch_big,
    }


def default_dvc() -> str:
    """The dvc installed beside this Python (the ``bench`` extra), else the one on PATH."""
    beside = Path(sys.executable).with_name('dvc')
    return str(beside) if beside.exists() else shutil.which('dvc') or 'dvc'


def phase_dvc(
    args: argparse.Namespace,
    server: MotoServer,
    work: Path,
    images: np.ndarray,
    labels: np.ndarray,
    rows: list[dict[str, Any]],
    details: dict[str, Any],
) -> None:
    dvc = args.dvc
    if shutil.which(dvc) is None:
        raise SystemExit(
            f'no dvc command at {dvc!r}: install the bench extra (.venv/bin/pip install -e ".[bench]"), '
            'pass --dvc PATH, or --dvc-n 0 to skip DVC'
        )
    n = min(args.dvc_n, len(images))
    proj = work / 'dvc'
    bl.log(f'DVC: writing {n:,} .npy files')
    bl.write_npy_files(proj / 'data', range(n), images[:n])
    env = {**os.environ, 'DVC_NO_ANALYTICS': '1'}

    def dvc_run(*cmd: str) -> float:
        t0 = time.perf_counter()
        proc = subprocess.run([dvc, *cmd], cwd=proj, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f'dvc {" ".join(cmd)} failed: {proc.stderr[-2000:]}')
        return time.perf_counter() - t0

    dvc_run('init', '--no-scm')
    t_add = dvc_run('add', 'data')
    bucket = new_bucket(server)
    dvc_run('remote', 'add', '-d', 'store', f's3://{bucket}/dvc')
    dvc_run('remote', 'modify', 'store', 'endpointurl', server.endpoint)
    dvc_run('remote', 'modify', 'store', 'region', 'us-east-1')
    bl.log('DVC: push')
    t_dvc_push = dvc_run('push')
    subprocess.run(['rm', '-rf', str(proj / 'data'), str(proj / '.dvc' / 'cache')], check=True)
    bl.log('DVC: pull')
    t_dvc_pull = dvc_run('pull')
    first = np.load(proj / 'data' / '0.npy')
    assert (first == images[0]).all()

    src = build_repo(work / 'dvc-twin', images[:n], labels[:n])
    url = f's3://{new_bucket(server)}/twin'
    src.remote.add('origin', url, endpoint_url=server.endpoint)
    t_push, _ = bl.timed(lambda: src.remote.push('origin', 'master'))
    t_clone, c = clone(work / 'dvc-twin-clone', url, server.endpoint)
    t_fetch, _ = bl.timed(lambda: c.remote.fetch_data('origin', branch='master'))
    nbytes = n * 784
    row(
        rows,
        f'push {n:,} samples beside dvc push',
        t_push,
        t_dvc_push,
        nbytes,
        target=20.0,
        beside='dvc push',
        note=f'dvc add before it (local hashing, not counted): {t_add:.1f} s',
    )
    row(
        rows,
        f'clone + fetch_data {n:,} samples beside dvc pull',
        t_clone + t_fetch,
        t_dvc_pull,
        nbytes,
        target=20.0,
        beside='dvc pull',
        note=f'clone {t_clone:.1f} s + fetch_data {t_fetch:.1f} s',
    )
    details['dvc'] = {
        'n': n,
        'dvc_add_s': t_add,
        'dvc_push_s': t_dvc_push,
        'dvc_pull_s': t_dvc_pull,
        'hangarfs_push_s': t_push,
        'hangarfs_clone_s': t_clone,
        'hangarfs_fetch_s': t_fetch,
    }


# ------------------------------------------------------------------------------------------ main


def table(rows: list[dict[str, Any]]) -> str:
    head = '| figure | hangarfs | beside it | ratio (beside / hangarfs) | target | | note |'
    lines = [head, '|---|---:|---:|---:|---|---|---|']
    for r in rows:
        mbps = f' ({r["hangarfs_MBps"]:.0f} MB/s)' if r['hangarfs_MBps'] else ''
        raw = (
            f'{r["beside"]} {r["raw_s"]:.2f} s' + (f' ({r["raw_MBps"]:.0f} MB/s)' if r['raw_MBps'] else '')
            if r['raw_s'] is not None
            else '–'
        )
        ratio = f'{r["ratio"]:.2f}x' if r['ratio'] is not None else '–'
        verdict = '' if r['pass'] is None else ('PASS' if r['pass'] else 'MISS')
        hf = f'{r["hangarfs_s"]:.2f} s{mbps}'
        lines.append(
            f'| {r["figure"]} | {hf} | {raw} | {ratio} | {r["target"] or "–"} | {verdict} | {r["note"]} |'
        )
    return '\n'.join(lines)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=1_000_000, help='MNIST-shaped samples pushed, cloned, fetched')
    p.add_argument('--random-n', type=int, default=10_000, help='random samples fetched / read lazily')
    p.add_argument('--dvc-n', type=int, default=100_000, help='samples beside DVC (0: skip DVC)')
    p.add_argument('--big-mib', type=int, default=1024, help='the big sample read lazily (0: skip)')
    p.add_argument('--dvc', default=default_dvc(), help='the dvc command (dvc + dvc-s3)')
    p.add_argument('--anchor', type=Path, default=bl.DEFAULT_ANCHOR)
    p.add_argument('--skip-mount', action='store_true', help='no lazy mount phases (no FUSE here)')
    p.add_argument('--workdir', default=None)
    p.add_argument('--json', default=None)
    args = p.parse_args(argv)
    os.environ.update(KEYS)
    scratch = bl.Scratch()
    work = bl.workdir_setup(args.workdir, False, scratch, 'hangarfs-remotes-')
    anchor = bl.anchor_functions(args.anchor)
    n = max(args.n, args.dvc_n)
    bl.log(f"making {n:,} MNIST-shaped samples (the anchor's)")
    images, labels = anchor.make_data(n)
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {'n': args.n}
    meta = {
        'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
        'command': ' '.join(sys.argv),
        'machine': bl.machine_info(),
        'load': [bl.load_sample()],
    }
    server = MotoServer()
    t0 = time.perf_counter()
    try:
        fetched = phase_transfer(args, server, work, images[: args.n], labels[: args.n], rows, details)
        meta['load'].append(bl.load_sample())
        if not args.skip_mount:
            phase_lazy(args, server, work, fetched, args.n, rows, details)
            meta['load'].append(bl.load_sample())
        if args.dvc_n:
            phase_dvc(args, server, work, images, labels, rows, details)
            meta['load'].append(bl.load_sample())
    finally:
        server.stop()
    meta['runtime_s'] = time.perf_counter() - t0
    print(table(rows))
    doc = {'meta': meta, 'rows': rows, 'details': details}
    print(JSON_MARKER)
    print(json.dumps(doc, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1, default=str))


if __name__ == '__main__':
    main(sys.argv[1:])
