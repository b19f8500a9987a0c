"""What re-hashing a tree node on a cache miss costs (issue 10: the verifying object store).

Builds a column of N MNIST-shaped labels-sized samples (so that the trees, not the data, dominate),
then times random single-key lookups with the node cache emptied before each round, reading nodes
through the verifying object store (blake2b-256 of every node read) and through the raw table (no
check), in alternating rounds of the same run; prints a table and one JSON document.

    .venv/bin/python scripts/bench/node_verify.py            # N = 1,000,000, ~1 min
    .venv/bin/python scripts/bench/node_verify.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import closing
from pathlib import Path

import numpy as np

from hangarfs import Repository
from hangarfs.engine.keys import encode_key
from hangarfs.engine.records import digest_of
from hangarfs.engine.tree import NodeCache, tree_get


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, default=1_000_000, help='samples in the column')
    ap.add_argument('--lookups', type=int, default=20_000, help='random lookups per round')
    ap.add_argument('--rounds', type=int, default=5, help='rounds per variant (alternating)')
    ap.add_argument('--json', type=Path, help='also write the JSON document here')
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix='hangarfs-node-verify-') as tmp:
        repo = Repository(Path(tmp) / 'repo', exists=False)
        repo.init(user_name='Bench', user_email='bench@example.org')
        with closing(repo.checkout(write=True)) as co:
            col = co.add_ndarray_column('x', shape=(64,), dtype=np.uint8)  # 64 B: digests in the tree
            rng = np.random.default_rng(0)
            col.update_batch(list(range(args.n)), rng.integers(0, 256, (args.n, 64), dtype=np.uint8))
            co.commit('bench')
        store = repo.store
        root = store.objects.snapshot(store.refs.branch_head('master') or '').columns['x'].root
        table = store.history_table('objects')
        keys = [encode_key(int(k)) for k in np.random.default_rng(1).integers(0, args.n, args.lookups)]
        node_bytes: list[int] = []

        def raw_load(d: bytes) -> bytes | None:
            data = table.get(d)
            if data is not None:
                node_bytes.append(len(data))
            return data

        variants = {
            'verified (blake2b per node read)': lambda: NodeCache(
                lambda d: store.objects.get(d, 'tree node')
            ),
            'unverified (raw table read)': lambda: NodeCache(raw_load),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        misses: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, make in variants.items():
                cache = make()  # empty: every node of every path is a miss at first
                loads = 0
                inner = cache._load

                def counting(d: bytes, inner=inner) -> bytes | None:
                    nonlocal loads
                    loads += 1
                    return inner(d)

                cache._load = counting
                t0 = time.perf_counter()
                for k in keys:
                    tree_get(cache, root, k)
                times[name].append(time.perf_counter() - t0)
                misses[name] = loads
        mean_node = statistics.mean(node_bytes) if node_bytes else 0.0
        t_hash = time.perf_counter()
        sample = table.get(root) or b''
        for _ in range(20_000):
            digest_of(sample)
        hash_us = (time.perf_counter() - t_hash) / 20_000 * 1e6
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append(
            {
                'variant': name,
                'lookups_per_s': args.lookups / med,
                'node_misses_per_round': misses[name],
                'us_per_miss': med / max(1, misses[name]) * 1e6,
            }
        )
    ver, raw = rows
    report = {
        'n': args.n,
        'lookups': args.lookups,
        'rounds': args.rounds,
        'mean_node_bytes': mean_node,
        'blake2b_us_per_root_node': hash_us,
        'variants': rows,
        'cost_per_miss_us': ver['us_per_miss'] - raw['us_per_miss'],
        'verified_over_unverified_time': raw['lookups_per_s'] / ver['lookups_per_s'],
    }
    print(f'{"variant":<36} {"lookups/s":>12} {"misses/round":>13} {"us/miss":>9}')
    for r in rows:
        print(
            f'{r["variant"]:<36} {r["lookups_per_s"]:>12,.0f} {r["node_misses_per_round"]:>13,}'
            f' {r["us_per_miss"]:>9.2f}'
        )
    print(
        f'mean node {mean_node:.0f} B; blake2b of the root node {hash_us:.2f} us; re-hashing adds '
        f'{report["cost_per_miss_us"]:.2f} us per miss ({report["verified_over_unverified_time"]:.3f}x time)'
    )
    print('=== node verify benchmark JSON ===')
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == '__main__':
    main()
