"""The cost of the remote storage layer beside moving the same bytes as plain large objects.

Against a moto S3 server on 127.0.0.1 (its own process, started and stopped here), for each blob
size (``--blob-sizes``) and the same ``--mib`` MiB of random payload:

- **raw obstore**: the payload cut into ``--pack-mib`` objects, uploaded and then downloaded with
  ``--concurrency`` threads of plain ``obstore.put``/``obstore.get`` (the client hangarfs uses, with
  its defaults: multipart above 5 MiB) into a fresh prefix;
- **raw s3fs**: the same objects through s3fs (``pipe``/``cat``), the other client considered;
- **hangarfs push**: ``RemoteRepo.write_data_packs`` of the blobs (digests computed beforehand, as
  the engine has them): packs, create-only PUTs, the partial index;
- **hangarfs fetch**: a fresh ``open_remote`` of that remote, ``known_digests()`` and
  ``read_batches()`` of every pack of the column (the bulk path phase 2 uses), every blob checked
  against its checksum.

Throughput is payload MiB/s (the blobs' own bytes); the ratio is hangarfs / raw obstore, for push
against the faster of obstore's default (multipart above 5 MiB) and single PUTs, which is what
hangarfs sends (phase 2's target: >= 0.8 for push and full fetch). Every measurement is repeated
``--repeats`` times, alternating raw and hangarfs, and the median is reported; the requests column
counts the requests each side made (hangarfs: its own counters; raw: one per object, multipart parts
not counted).
Output: a Markdown table, then ``=== remote transport benchmark JSON ===`` and one JSON document
(``--json FILE`` writes it too).

    .venv/bin/python scripts/bench/remote_transport.py                       # ~2-4 min
    .venv/bin/python scripts/bench/remote_transport.py --mib 32 --repeats 1  # smoke, ~20 s
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from hangarfs.backends.remote_repo import open_remote

JSON_MARKER = '=== remote transport benchmark JSON ==='
KEYS = {'access_key_id': 'bench', 'secret_access_key': 'bench'}
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


class MotoServer:
    """``moto_server`` in its own process on 127.0.0.1, so that it does not share our GIL."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f'http://127.0.0.1:{self.port}'
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'moto.server', '-H', '127.0.0.1', '-p', str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'moto_server exited with status {self.proc.returncode}')
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError('moto_server did not start listening within 60 s')

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_blobs(total: int, size: int, seed: int) -> list[tuple[bytes, bytes]]:
    rng = np.random.default_rng(seed)
    n = max(1, total // size)
    raw = rng.integers(0, 256, n * size, dtype=np.uint8).tobytes()
    out = []
    for i in range(n):
        data = raw[i * size : (i + 1) * size]
        out.append((hashlib.blake2b(data, digest_size=32).digest(), data))
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


class RawObstore:
    def __init__(self, endpoint: str, bucket: str, concurrency: int) -> None:
        import obstore
        from obstore.store import S3Store

        self.obstore = obstore
        self.store = S3Store(
            bucket,
            endpoint=endpoint,
            region='us-east-1',
            client_options={'allow_http': True},
            virtual_hosted_style_request=False,
            **KEYS,
        )
        self.concurrency = concurrency

    def push(self, prefix: str, objects: list[bytes], multipart: bool | None = None) -> int:
        def put(i: int) -> None:
            self.obstore.put(self.store, f'{prefix}/{i}', objects[i], use_multipart=multipart)

        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(put, range(len(objects))))
        return len(objects)

    def fetch(self, prefix: str, count: int) -> int:
        def get(i: int) -> int:
            return len(self.obstore.get(self.store, f'{prefix}/{i}').bytes())

        with ThreadPoolExecutor(self.concurrency) as pool:
            return sum(pool.map(get, range(count)))


class RawS3fs:
    def __init__(self, endpoint: str, bucket: str) -> None:
        import s3fs

        self.fs = s3fs.S3FileSystem(key='bench', secret='bench', client_kwargs={'endpoint_url': endpoint})
        self.bucket = bucket

    def push(self, prefix: str, objects: list[bytes]) -> int:
        self.fs.pipe({f'{self.bucket}/{prefix}/{i}': obj for i, obj in enumerate(objects)})
        return len(objects)

    def fetch(self, prefix: str, count: int) -> int:
        got = self.fs.cat([f'{self.bucket}/{prefix}/{i}' for i in range(count)])
        return sum(len(v) for v in got.values())


def run_case(server: MotoServer, client: Any, size: int, args: argparse.Namespace) -> dict[str, Any]:
    blobs = make_blobs(args.mib * MiB, size, seed=size)
    payload = sum(len(b) for _, b in blobs)
    joined = b''.join(b for _, b in blobs)
    step = args.pack_mib * MiB
    objects = [joined[i : i + step] for i in range(0, len(joined), step)]
    del joined
    bucket = f'bench-{uuid.uuid4().hex[:8]}'
    client.create_bucket(Bucket=bucket)
    raw = RawObstore(server.endpoint, bucket, args.concurrency)
    s3 = RawS3fs(server.endpoint, bucket) if not args.skip_s3fs else None
    runs: dict[str, list[float]] = {
        k: []
        for k in ('raw_push', 'raw_push_single', 'raw_fetch', 's3fs_push', 's3fs_fetch', 'push', 'fetch')
    }
    requests: dict[str, Any] = {}
    overhead: dict[str, int] = {}

    def one_round(r: int) -> None:
        prefix = f'raw{r}'
        runs['raw_push'].append(timed(lambda: raw.push(prefix, objects))[0])
        runs['raw_push_single'].append(timed(lambda: raw.push(prefix + 's', objects, multipart=False))[0])
        t, got = timed(lambda: raw.fetch(prefix, len(objects)))
        assert got == payload
        runs['raw_fetch'].append(t)

        url = f's3://{bucket}/hangarfs{r}'
        remote = open_remote(url, create=True, endpoint_url=server.endpoint, pack_size=step, **KEYS)
        remote.concurrency = args.concurrency
        remote.store.stats.reset()
        t, report = timed(lambda: remote.write_data_packs('images', blobs))
        assert report.blobs_written == len(blobs)
        runs['push'].append(t)
        requests['push'] = remote.store.stats.snapshot()
        overhead['pack_bytes'] = sum(p.size for p in report.packs)

        def fetch_all() -> tuple[int, Any]:
            fresh = open_remote(url, endpoint_url=server.endpoint, **KEYS)
            fresh.concurrency = args.concurrency
            fresh.store.stats.reset()
            n = 0
            for batch in fresh.read_batches(fresh.known_digests().group_tables('images')):
                n += batch.nbytes
            return n, fresh.store.stats.snapshot()

        t, (got, stats) = timed(fetch_all)
        assert got == payload, (got, payload)
        runs['fetch'].append(t)
        requests['fetch'] = stats

        if s3 is not None:
            runs['s3fs_push'].append(timed(lambda: s3.push(f's3fs{r}', objects))[0])
            t, got = timed(lambda: s3.fetch(f's3fs{r}', len(objects)))
            assert got == payload
            runs['s3fs_fetch'].append(t)

    for r in range(args.repeats):
        one_round(r)
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    mibps = {k: payload / MiB / v for k, v in med.items()}
    return {
        'blob_size': size,
        'blobs': len(blobs),
        'payload_bytes': payload,
        'objects_raw': len(objects),
        'seconds': runs,
        'median_seconds': med,
        'mib_per_s': mibps,
        'ratio_push': mibps['push'] / max(mibps['raw_push'], mibps['raw_push_single']),
        'ratio_fetch': mibps['fetch'] / mibps['raw_fetch'],
        'ratio_s3fs_vs_obstore_push': mibps['s3fs_push'] / mibps['raw_push']
        if 's3fs_push' in mibps
        else None,
        'ratio_s3fs_vs_obstore_fetch': mibps['s3fs_fetch'] / mibps['raw_fetch']
        if 's3fs_fetch' in mibps
        else None,
        'requests': requests,
        'pack_bytes_per_payload_byte': overhead['pack_bytes'] / payload,
        'bytes_sent_per_payload_byte': requests['push']['bytes_up'] / payload,
    }


def render(cases: list[dict[str, Any]]) -> str:
    head = (
        '| blob size | blobs | raw push (multipart / single PUT) | hangarfs push | ratio | raw fetch '
        '| hangarfs fetch | ratio | s3fs push / fetch | requests: hangarfs push / fetch, raw objects '
        '| bytes sent / payload |'
    )
    lines = [head, '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|']
    for c in cases:
        m = c['mib_per_s']
        req = c['requests']
        nan = float('nan')
        lines.append(
            f'| {c["blob_size"]:,} B | {c["blobs"]:,} '
            f'| {m["raw_push"]:.0f} / {m["raw_push_single"]:.0f} MiB/s | {m["push"]:.0f} MiB/s '
            f'| {c["ratio_push"]:.2f} | {m["raw_fetch"]:.0f} MiB/s | {m["fetch"]:.0f} MiB/s '
            f'| {c["ratio_fetch"]:.2f} '
            f'| {m.get("s3fs_push", nan):.0f} / {m.get("s3fs_fetch", nan):.0f} MiB/s '
            f'| {req["push"]["total_requests"]} / {req["fetch"]["total_requests"]}, {c["objects_raw"]} '
            f'| {c["bytes_sent_per_payload_byte"]:.3f} |'
        )
    return '\n'.join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--mib', type=int, default=256, help='payload per case, MiB (default 256)')
    ap.add_argument('--blob-sizes', default='784,65536,4194304', help='comma-separated blob sizes in bytes')
    ap.add_argument('--pack-mib', type=int, default=32, help='pack size and raw object size, MiB')
    ap.add_argument('--concurrency', type=int, default=4, help='requests in flight, both sides')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--skip-s3fs', action='store_true')
    ap.add_argument('--json', type=Path, default=None)
    args = ap.parse_args()

    import boto3

    started = time.time()
    server = MotoServer()
    try:
        client = boto3.client(
            's3',
            endpoint_url=server.endpoint,
            region_name='us-east-1',
            aws_access_key_id='bench',
            aws_secret_access_key='bench',
        )
        cases = [run_case(server, client, int(s), args) for s in args.blob_sizes.split(',')]
    finally:
        server.stop()
    import moto
    import obstore

    doc = {
        'benchmark': 'remote_transport',
        'args': vars(args) | {'json': str(args.json) if args.json else None},
        'cases': cases,
        'runtime_s': time.time() - started,
        'machine': {
            'cpus': os.cpu_count(),
            'platform': platform.platform(),
            'python': sys.version.split()[0],
        },
        'versions': {'obstore': obstore.__version__, 'moto': moto.__version__},
        'git_commit': subprocess.run(
            ['git', 'rev-parse', 'HEAD'], capture_output=True, text=True
        ).stdout.strip(),
    }
    print(render(cases))
    print(f'\nruntime {doc["runtime_s"]:.0f} s; median of {args.repeats} run(s); MiB/s of payload')
    print(JSON_MARKER)
    print(json.dumps(doc, indent=1))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1))


if __name__ == '__main__':
    main()
