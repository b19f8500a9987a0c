#!/usr/bin/env python
"""History benchmark (issue 3): diff, merges and old checkouts, hangarfs beside Hangar 0.5.2.

    .venv/bin/python scripts/bench/history.py                       # 100k and 1M, both sides (~15 min)
    .venv/bin/python scripts/bench/history.py --big-n 0             # 100k only (~3 min)
    .venv/bin/python scripts/bench/history.py --skip-hangar         # hangarfs only (~1 min)
    .venv/bin/python scripts/bench/history.py --n 5000 --big-n 20000 --rounds 2    # smoke (~1 min)

Workload, on a repository of N MNIST-shaped samples made by ``make_data`` of
``../shared/bench/hangar_anchor.py`` (images (784,) uint8 and labels (1,) int64, keys 0..N-1, the
anchor's seed), ingested and committed (c1), then 10 images changed and committed (c2), exactly as the
anchor's ``phase_small_commit`` does (same keys and values):

- diff of c1 and c2 (10 samples apart; all 10 must be reported mutated);
- opening a read checkout of the old commit c1 (its 10 old values are checked afterwards, untimed);
- fast-forward merge: a branch changes 100 images and is merged into master, which did not move;
- three-way merge: a branch changes 100 images, master 10 others, and the branch is merged.
  The diff of the two branch heads just before it is reported too.

Keys and values come from the anchor's seeds (``SEED + 21/22`` for the fast-forward, ``SEED + 31/32/33``
for the three-way merge), so both sides do the same work. hangarfs repeats each operation ``--rounds``
times (new branches each round) and reports the median; every timed hangarfs call is made on a fresh
``Repository`` handle (cold in-process caches, warm OS page cache). Hangar's side is the anchor's own
``phase_ingest``, ``phase_small_commit`` and ``phase_vcs``, run in Hangar's interpreter (one round:
each of its operations takes seconds).

Each (side, N) is one subprocess, run one after the other. The hangarfs worker cannot import the anchor
(it imports ``hangar``), so it executes only the anchor's ``make_data`` and ``new_images`` from its
syntax tree. Output: a Markdown table (hangarfs, Hangar, ratio, target <= 50 ms, PASS/MISS), then a
marker line and a JSON document (also written to ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import benchlib as bl
import numpy as np

JSON_MARKER = '=== history benchmark JSON ==='
TARGET_S = 0.050

# (our figure, the anchor's figure, label)
OPERATIONS = [
    ('diff_10', 'diff_commits_10_changed', 'diff of two commits 10 samples apart'),
    ('checkout_old', 'checkout_old_commit_open', 'read checkout of an old commit'),
    ('merge_ff_100', 'merge_fast_forward_100_changed', 'fast-forward merge, 100 changed'),
    ('merge_3way_100_10', 'merge_three_way_100_vs_10', 'three-way merge, 100 vs 10 changed'),
    ('diff_branches_3way', 'diff_branches_before_3way', 'diff of the branches before the three-way merge'),
]
TARGETED = {'diff_10', 'checkout_old', 'merge_ff_100', 'merge_3way_100_10'}


# ============================================================================ hangarfs worker


def write_images(repo: Any, branch: str, keys: list[int], values: np.ndarray, message: str) -> str:
    with closing(repo.checkout(write=True, branch=branch)) as co:
        col = co.columns['images']
        with col:
            for k, v in zip(keys, values):
                col[k] = v
        return co.commit(message)


def hangarfs_worker(n: int, rounds: int, anchor: Path, workdir: Path) -> dict[str, Any]:
    from hangarfs import Repository

    h = bl.anchor_functions(anchor, extra=('new_images',))
    seed = h.SEED
    path = workdir / f'hangarfs-n{n}'
    shutil.rmtree(path, ignore_errors=True)
    t_data, (images, labels) = bl.timed(lambda: h.make_data(n))
    repo = Repository(path, exists=False)
    repo.init(user_name='bench', user_email='bench@example.org')
    info: dict[str, Any] = {'n': n, 'datagen_s': round(t_data, 3)}

    def ingest() -> str:
        with closing(repo.checkout(write=True)) as co:
            co.add_ndarray_column('images', shape=(784,), dtype=np.uint8).update_batch(list(range(n)), images)
            co.add_ndarray_column('labels', shape=(1,), dtype=np.int64).update_batch(list(range(n)), labels)
            return co.commit('ingest')

    info['ingest_and_commit_s'], c1 = bl.timed(ingest)
    # the anchor's phase_small_commit: the same 10 keys and values
    rng = np.random.default_rng(seed + 11)
    ch_keys = rng.choice(n, 10, replace=False).tolist()
    ch_vals = h.new_images(10, seed + 12)
    c2 = write_images(repo, 'master', ch_keys, ch_vals, 'change 10 samples')

    times: dict[str, list[float]] = {name: [] for name, _, _ in OPERATIONS}
    for r in range(rounds):
        fresh = Repository(path)
        t, d = bl.timed(lambda fresh=fresh: fresh.diff(c1, c2))
        assert d.columns['images'].mutated == set(ch_keys) and not d.columns['labels'], d
        times['diff_10'].append(t)

        fresh = Repository(path)
        t, old = bl.timed(lambda fresh=fresh: fresh.checkout(commit=c1))
        times['checkout_old'].append(t)
        col = old.columns['images']
        for k in ch_keys:
            assert np.array_equal(col[k], images[k]) and not np.array_equal(col[k], ch_vals[ch_keys.index(k)])
        old.close()

        # fast-forward: a branch changes 100 images, master does not move
        repo.create_branch(f'ff-dev-{r}')
        keys_ff = np.random.default_rng(seed + 21 + 100 * r).choice(n, 100, replace=False).tolist()
        vals_ff = h.new_images(100, seed + 22 + 100 * r)
        dev = write_images(repo, f'ff-dev-{r}', keys_ff, vals_ff, 'change 100')
        fresh = Repository(path)
        t, head = bl.timed(lambda fresh=fresh, r=r: fresh.merge('ff merge', 'master', f'ff-dev-{r}'))
        assert head == dev == repo.store.refs.branch_head('master')
        times['merge_ff_100'].append(t)

        # three-way: the branch changes 100 images, master 10 others
        repo.create_branch(f'tw-dev-{r}')
        pool = np.random.default_rng(seed + 31 + 100 * r).choice(n, 110, replace=False).tolist()
        keys_dev, keys_master = pool[:100], pool[100:]
        vals_dev = h.new_images(100, seed + 32 + 100 * r)
        vals_master = h.new_images(10, seed + 33 + 100 * r)
        dev = write_images(repo, f'tw-dev-{r}', keys_dev, vals_dev, 'tw-dev: change 100')
        master = write_images(repo, 'master', keys_master, vals_master, 'master: change 10 others')
        fresh = Repository(path)
        t, d = bl.timed(lambda fresh=fresh, r=r: fresh.diff('master', f'tw-dev-{r}'))
        assert len(d.columns['images'].mutated) == 110, d
        times['diff_branches_3way'].append(t)
        fresh = Repository(path)
        t, head = bl.timed(lambda fresh=fresh, r=r: fresh.merge('3-way merge', 'master', f'tw-dev-{r}'))
        assert repo.store.objects.commit(head).parents == (master, dev)
        times['merge_3way_100_10'].append(t)
        with closing(repo.checkout()) as co:
            col = co.columns['images']
            for k, v in zip(keys_dev, vals_dev):
                assert np.array_equal(col[k], v)
            for k, v in zip(keys_master, vals_master):
                assert np.array_equal(col[k], v)
    info['times'] = times
    shutil.rmtree(path, ignore_errors=True)
    return info


# ============================================================================ Hangar worker

# run in Hangar's interpreter with this directory as its working directory, so that benchlib imports
HANGAR_CODE = r"""
import shutil, sys
from pathlib import Path
import benchlib
anchor, n, path = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
h = benchlib.import_anchor(anchor)
images, labels = h.make_data(n)
shutil.rmtree(path, ignore_errors=True)
repo = h.init_repo(path)
c1 = h.phase_ingest(repo, images, labels, n, 1)
c2, changed = h.phase_small_commit(repo, n, 1)
h.phase_vcs(repo, c1, c2, changed, n, 1)
shutil.rmtree(path, ignore_errors=True)
"""


def hangar_worker(python: str, anchor: Path, n: int, workdir: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [python, '-c', HANGAR_CODE, str(anchor.resolve()), str(n), str((workdir / f'hangar-n{n}').resolve())],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent,
    )
    if proc.returncode != 0:
        raise SystemExit(f'the Hangar worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
    figures: dict[str, Any] = {}
    for line in proc.stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get('kind') == 'figure':
            figures[obj['figure']] = obj['value']
    return figures


# ============================================================================ runner


def median_or_none(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def ms(s: float | None) -> str:
    if s is None:
        return '–'
    return f'{s * 1e3:,.1f} ms' if s < 1 else f'{s:,.2f} s'


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        '| operation | N | hangarfs (median) | Hangar 0.5.2 | Hangar / hangarfs | target | |',
        '|---|---|---|---|---|---|---|',
    ]
    for res in results:
        n = res['n']
        for name, anchor_name, label in OPERATIONS:
            ours = median_or_none(res['hangarfs']['times'].get(name))
            theirs = res['hangar'].get(anchor_name) if res.get('hangar') else None
            ratio = f'{theirs / ours:,.0f}x' if ours and theirs else '–'
            target = '<= 50 ms' if name in TARGETED else '–'
            verdict = (
                ('PASS' if ours is not None and ours <= TARGET_S else 'MISS') if name in TARGETED else ''
            )
            rows.append(f'| {label} | {n:,} | {ms(ours)} | {ms(theirs)} | {ratio} | {target} | {verdict} |')
    return '\n'.join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, default=100_000, help='samples in the standard repository')
    ap.add_argument('--big-n', type=int, default=1_000_000, help='samples in the big repository (0 skips)')
    ap.add_argument('--rounds', type=int, default=3, help='hangarfs repeats of each timed operation')
    ap.add_argument('--skip-hangar', action='store_true', help='run hangarfs only')
    ap.add_argument('--hangar-python', default=bl.DEFAULT_HANGAR_PYTHON)
    ap.add_argument('--anchor', type=Path, default=bl.DEFAULT_ANCHOR)
    ap.add_argument('--workdir', type=Path, default=None, help='parent of the temporary directory')
    ap.add_argument('--json', type=Path, default=None, help='also write the JSON document here')
    ap.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--worker-n', type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument('--worker-dir', type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker:
        print(json.dumps(hangarfs_worker(a.worker_n, a.rounds, a.anchor, a.worker_dir)))
        return
    if not a.anchor.is_file():
        raise SystemExit(f'no anchor at {a.anchor}; pass --anchor PATH/hangar_anchor.py')
    if not a.skip_hangar and not Path(a.hangar_python).exists():
        raise SystemExit(
            f'no Hangar interpreter at {a.hangar_python}: run `bash ../shared/bench/install_hangar.sh` '
            'or pass --hangar-python, or --skip-hangar'
        )
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix='hangarfs-history-bench-', dir=a.workdir))
    results: list[dict[str, Any]] = []
    try:
        for n in [x for x in (a.n, a.big_n) if x]:
            print(f'# N = {n:,}: hangarfs ...', file=sys.stderr, flush=True)
            worker = [
                '--worker',
                '--worker-n',
                str(n),
                '--worker-dir',
                str(workdir),
                '--rounds',
                str(a.rounds),
            ]
            proc = subprocess.run(
                [sys.executable, __file__, *worker, '--anchor', str(a.anchor)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise SystemExit(f'the hangarfs worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
            res: dict[str, Any] = {'n': n, 'hangarfs': json.loads(proc.stdout.strip().splitlines()[-1])}
            if not a.skip_hangar:
                print(f'# N = {n:,}: Hangar 0.5.2 ...', file=sys.stderr, flush=True)
                res['hangar'] = hangar_worker(a.hangar_python, a.anchor, n, workdir)
            results.append(res)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.time() - started
    command = ' '.join(['.venv/bin/python', 'scripts/bench/history.py', *sys.argv[1:]])
    print(table(results))
    print(f'\n{command}  ({time.strftime("%Y-%m-%d")}, {elapsed / 60:.1f} min, {os.cpu_count()} CPUs)')
    doc = {
        'benchmark': 'history (issue 3)',
        'command': command,
        'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        'elapsed_s': round(elapsed, 1),
        'git_commit': bl.git_commit(),
        'machine': {
            'platform': platform.platform(),
            'cpus': os.cpu_count(),
            'python': sys.version.split()[0],
        },
        'target_s': TARGET_S,
        'results': results,
    }
    print(JSON_MARKER)
    print(json.dumps(doc, indent=2))
    if a.json:
        a.json.write_text(json.dumps(doc, indent=2))


if __name__ == '__main__':
    main()
