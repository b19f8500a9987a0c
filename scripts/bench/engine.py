#!/usr/bin/env python
"""Engine benchmark (issue 2): hangarfs beside the original Hangar 0.5.2, same data, same run.

    .venv/bin/python scripts/bench/engine.py --json /tmp/engine.json   # 3x 100k + 1M: 11-13 min, 2 cores
    .venv/bin/python scripts/bench/engine.py --n 5000 --big-n 20000 --plain-n 2000 --repeats 1  # ~20 s
    .venv/bin/python scripts/bench/engine.py --skip-hangar --repeats 1   # hangarfs only, ~1 min
    .venv/bin/python scripts/bench/engine.py --render /tmp/engine.json   # print a saved report again

Data: synthetic MNIST-shaped samples made by ``make_data`` of ``../shared/bench/hangar_anchor.py``
(images (784,) uint8, labels (1,) int64, keys ints 0..N-1, fixed seed). The anchor file is *run*, not
copied: the Hangar side imports it in Hangar's interpreter; the hangarfs side (whose interpreter has no
``hangar`` to import) executes just its ``make_data``, ``new_images`` and ``dir_usage`` functions. Both
sides report a digest of the data they used and the runner checks that they agree.

Each (side, suite, run) is one worker subprocess: ``--hangarfs-python`` (default: this interpreter)
for hangarfs, ``--hangar-python`` (default ``/tmp/hangar-venv/bin/python``) for Hangar. A worker
writes one JSON object per line to a file the runner reads; library chatter goes to stderr. Workers
alternate between the two sides so that noise from other work on the machine falls on both.

Suites (what one worker does):

- standard (``--n``, ``--repeats`` times, fresh repository each): ingest images then labels in
  ``with col:`` loops, commit, measure the store; then three read phases, each on a fresh repository
  handle (cold in-process caches, warm OS page cache): random-order single reads of all N, key-order
  single reads of all N, ``get_batch`` over all N in random order, ``--batch`` keys a call; then
  ``--small-commits`` rounds of: open a writer, change 10 images, commit, close (disk growth measured
  around the round, as hangar_anchor does). Then, in scratch repositories: ``--plain-n`` per-sample
  adds without ``with`` (every write durable on return) and ``update_batch`` of all N images (Hangar:
  ``col.update(dict)``, its bulk write).
- big (``--big-n``, once): the same ingest and commit, the store size, random single reads and
  ``get_batch`` of ``--big-read`` samples, and the small-commit rounds.

Output: a Markdown table on stdout (hangarfs, Hangar, how many times better hangarfs is, target,
PASS/MISS), then a marker line and one JSON document (also written to ``--json``). ``--profile DIR``
writes a cProfile dump of every timed hangarfs phase to DIR (timings then include profiler overhead).
All repositories live under one temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import benchlib as bl
import numpy as np

JSON_MARKER = '=== engine benchmark JSON ==='
IMG_SHAPE = (784,)
RAW_BYTES_PER_SAMPLE = 784 + 8  # image + label


# ============================================================================ the worker (either side)


class Emitter:
    """Appends one JSON object per line to the file the runner reads."""

    def __init__(self, path: str, side: str, suite: str, n: int, run: int) -> None:
        self._fh = open(path, 'a')  # noqa: SIM115 (kept open for the worker's lifetime)
        self._tags = {'side': side, 'suite': suite, 'n': n, 'run': run}

    def __call__(self, kind: str, **fields: Any) -> None:
        self._fh.write(json.dumps({'kind': kind, **self._tags, **fields}) + '\n')
        self._fh.flush()

    def fig(self, figure: str, value: float, unit: str, **extra: Any) -> None:
        self('figure', figure=figure, value=float(value), unit=unit, **extra)


class Timer:
    """Wall-clock timer (perf_counter); with a profile directory, also a cProfile dump of the block."""

    def __init__(self, name: str, prof_dir: str | None, tag: str) -> None:
        self.name = name
        self.prof_path = None
        if prof_dir:
            self.prof_path = os.path.join(prof_dir, f'{name}-{tag}-{time.monotonic_ns()}.prof')
        self.s = 0.0

    def __enter__(self) -> Timer:
        self._prof = cProfile.Profile() if self.prof_path else None
        if self._prof is not None:
            self._prof.enable()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.perf_counter() - self._t0
        if self._prof is not None:
            self._prof.disable()
            self._prof.dump_stats(self.prof_path)


class HangarfsSide:
    name = 'hangarfs'
    store_dir = '.hangarfs'
    verify_reader = True

    def __init__(self, anchor: Path) -> None:
        import hangarfs
        from hangarfs import Repository

        self._repository = Repository
        self.helpers = bl.anchor_functions(anchor, extra=('new_images', 'dir_usage'))
        self.versions = {
            'hangarfs': hangarfs.__version__,
            'hangarfs_path': os.path.dirname(hangarfs.__file__),
        }

    def init(self, path: Path) -> Any:
        repo = self._repository(path, exists=False)
        repo.init(user_name='bench', user_email='bench@example.org', remove_old=True)
        return repo

    def open(self, path: Path) -> Any:
        return self._repository(path)

    def reader(self, repo: Any) -> Any:
        return repo.checkout()

    def writer(self, repo: Any) -> Any:
        return repo.checkout(write=True)

    def add_column(self, co: Any, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        return co.add_ndarray_column(name, shape=shape, dtype=dtype)

    def commit(self, co: Any, message: str) -> str:
        return co.commit(message)

    def close(self, co: Any) -> None:
        co.close()

    def update_batch(self, col: Any, keys: list[int], values: np.ndarray) -> None:
        col.update_batch(keys, values)

    def get_batch(self, co: Any, col: Any, keys: list[int]) -> np.ndarray:
        return col.get_batch(keys)

    def batch_context(self, co: Any, col: Any) -> Any:
        return col

    def prepare_epoch(self, col: Any) -> None:
        if hasattr(col, 'prepare_bulk_reads'):  # what a loader does before an epoch (absent before 11.2)
            col.prepare_bulk_reads()


class HangarSide:
    name = 'hangar'
    store_dir = '.hangar'

    def __init__(self, anchor: Path) -> None:
        hangar_anchor = bl.import_anchor(anchor)  # which imports hangar, and patches numpy for it
        import hangar

        self._ha = hangar_anchor
        self._repository = hangar.Repository
        self.helpers = hangar_anchor
        self.versions = {'hangar': hangar.__version__}

    def init(self, path: Path) -> Any:
        return self._ha.init_repo(str(path))

    def open(self, path: Path) -> Any:
        with self._ha.quiet():
            return self._repository(str(path), exists=True)

    def reader(self, repo: Any) -> Any:
        with self._ha.quiet():
            return repo.checkout()

    def writer(self, repo: Any) -> Any:
        with self._ha.quiet():
            return repo.checkout(write=True)

    def add_column(self, co: Any, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        with self._ha.quiet():
            return co.add_ndarray_column(name, shape=shape, dtype=dtype)

    def commit(self, co: Any, message: str) -> str:
        with self._ha.quiet():
            return co.commit(message)

    def close(self, co: Any) -> None:
        with self._ha.quiet():
            co.close()

    def update_batch(self, col: Any, keys: list[int], values: np.ndarray) -> None:
        col.update(dict(zip(keys, values)))  # Hangar 0.5's bulk write

    def get_batch(self, co: Any, col: Any, keys: list[int]) -> np.ndarray:
        return np.stack(co[[('images', k) for k in keys]])  # Hangar 0.5's multi-sample read

    def batch_context(self, co: Any, col: Any) -> Any:
        return co  # keeps the backends open across calls, as `with col:` does for single reads

    def prepare_epoch(self, col: Any) -> None:
        pass


def _store_bytes(side: Any, repo_path: Path) -> tuple[int, int, dict[str, int]]:
    return side.helpers.dir_usage(str(repo_path / side.store_dir))


class Worker:
    """Runs one suite of one side and emits its figures."""

    def __init__(self, side: Any, a: argparse.Namespace) -> None:
        self.side = side
        self.a = a
        self.n = a.n
        self.emit = Emitter(a.emit, side.name, a.suite, a.n, a.run)
        self.tag = f'{a.suite}-n{a.n}-run{a.run}'
        self.prof_dir = a.profile if side.name == 'hangarfs' else None
        self.root = Path(a.workdir) / f'{side.name}-{self.tag}'

    def timer(self, name: str) -> Timer:
        return Timer(name, self.prof_dir, self.tag)

    def log(self, msg: str) -> None:
        print(f'  [{self.side.name} {self.tag}] {msg}', file=sys.stderr, flush=True)

    def run(self) -> None:
        side, n, h = self.side, self.n, self.side.helpers
        t_all = time.perf_counter()
        self.emit(
            'env',
            python=sys.version.split()[0],
            numpy=np.__version__,
            platform=platform.platform(),
            cpus=os.cpu_count(),
            **side.versions,
        )
        with self.timer('datagen') as t:
            images, labels = h.make_data(n)
        digest = hashlib.blake2b(images.tobytes(), digest_size=16)
        digest.update(labels.tobytes())
        self.emit('data', digest=digest.hexdigest(), seconds=round(t.s, 3), seed=h.SEED)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self.main_repo(images, labels)
            if self.a.suite == 'standard':
                self.plain_adds(images)
                self.bulk_adds(images)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
        self.emit.fig('worker_wall', time.perf_counter() - t_all, 's')

    # ------------------------------------------------------------------ the main repository

    def main_repo(self, images: np.ndarray, labels: np.ndarray) -> None:
        side, n, fig = self.side, self.n, self.emit.fig
        path = self.root / 'main'
        repo = side.init(path)
        co = side.writer(repo)
        img = side.add_column(co, 'images', IMG_SHAPE, np.uint8)
        lab = side.add_column(co, 'labels', (1,), np.int64)
        keys = list(range(n))
        self.log('ingest')
        with self.timer('add_with') as t, img:
            for i in keys:
                img[i] = images[i]
        fig('add_with', n / t.s, 'samples/s', seconds=t.s)
        with self.timer('add_labels_with') as t, lab:
            for i in keys:
                lab[i] = labels[i]
        fig('add_labels_with', n / t.s, 'samples/s', seconds=t.s)
        with self.timer('commit_ingest') as t:
            side.commit(co, 'ingest')
        fig('commit_ingest', t.s, 's')
        side.close(co)
        del img, lab, co

        app, alloc, per = _store_bytes(side, path)
        fig('repo_bytes', app, 'bytes', allocated=alloc, breakdown=per)
        fig('repo_ratio', app / (n * RAW_BYTES_PER_SAMPLE), 'x', raw_bytes=n * RAW_BYTES_PER_SAMPLE)
        del repo

        self.log('reads')
        rng = np.random.default_rng(side.helpers.SEED + 7)  # the anchor's read order
        perm = rng.permutation(n)
        if self.a.suite == 'big':
            perm = perm[: self.a.big_read]
        perm_list = perm.tolist()
        self.read_random(path, images, perm_list)
        if self.a.suite == 'standard':
            self.read_key_order(path, images)
        self.read_batches(path, images, perm_list)
        if self.a.suite == 'big' and self.a.epoch_read:
            order = rng.permutation(n)[: self.a.epoch_read]
            self.read_epoch(path, images, order.tolist(), 'get_batch_epoch')
            self.read_epoch(path, images, list(range(min(n, self.a.epoch_read))), 'get_batch_epoch_keys')

        self.log('small commits')
        repo = side.open(path)
        for j in range(self.a.small_commits):
            self.small_commit(repo, path, j)
        del repo

    def _fresh_reader(self, path: Path) -> tuple[Any, Any, Any]:
        """A new repository handle (cold in-process caches) and a timed read checkout on it."""
        repo = self.side.open(path)
        with self.timer('read_open') as t:
            rco = self.side.reader(repo)
        self.emit.fig('read_open', t.s, 's')
        return repo, rco, rco.columns['images']

    def read_random(self, path: Path, images: np.ndarray, perm: list[int]) -> None:
        _repo, rco, col = self._fresh_reader(path)
        assert len(col) == self.n, (len(col), self.n)
        value = None
        with self.timer('read_random') as t, col:
            for k in perm:
                value = col[k]
        self.emit.fig('read_random', len(perm) / t.s, 'samples/s', seconds=t.s, samples=len(perm))
        assert np.array_equal(value, images[perm[-1]])
        with col:
            for k in perm[:200]:
                assert np.array_equal(col[k], images[k]), k
        self.side.close(rco)

    def read_key_order(self, path: Path, images: np.ndarray) -> None:
        _repo, rco, col = self._fresh_reader(path)
        keys = sorted(col.keys())
        assert keys == list(range(self.n))
        value = None
        with self.timer('read_key_order') as t, col:
            for k in keys:
                value = col[k]
        self.emit.fig('read_key_order', self.n / t.s, 'samples/s', seconds=t.s)
        assert np.array_equal(value, images[keys[-1]])
        self.side.close(rco)

    def read_batches(self, path: Path, images: np.ndarray, perm: list[int]) -> None:
        _repo, rco, col = self._fresh_reader(path)
        bs = self.a.batch
        out = None
        with self.timer('get_batch') as t, self.side.batch_context(rco, col):
            for s in range(0, len(perm), bs):
                out = self.side.get_batch(rco, col, perm[s : s + bs])
        self.emit.fig('get_batch', len(perm) / t.s, 'samples/s', seconds=t.s, samples=len(perm), batch=bs)
        last = perm[(len(perm) - 1) // bs * bs :]
        assert out is not None and np.array_equal(out, images[last]), 'get_batch returned wrong data'
        self.side.close(rco)

    def read_epoch(self, path: Path, images: np.ndarray, keys: list[int], figure: str) -> None:
        """``get_batch`` over ``keys`` (part of an epoch) by a reader told first that it reads an epoch
        (as the loaders tell it): the time includes that preparation."""
        _repo, rco, col = self._fresh_reader(path)
        bs = self.a.batch
        out = None
        with self.timer(figure) as t, self.side.batch_context(rco, col):
            self.side.prepare_epoch(col)
            for s in range(0, len(keys), bs):
                out = self.side.get_batch(rco, col, keys[s : s + bs])
        self.emit.fig(figure, len(keys) / t.s, 'samples/s', seconds=t.s, samples=len(keys), batch=bs)
        last = keys[(len(keys) - 1) // bs * bs :]
        assert out is not None and np.array_equal(out, images[last]), 'get_batch returned wrong data'
        self.side.close(rco)

    def small_commit(self, repo: Any, path: Path, j: int) -> None:
        """One round as in hangar_anchor.phase_small_commit (seed offsets 11, 41, 71, ...)."""
        side, h, fig = self.side, self.side.helpers, self.emit.fig
        seed_off = 11 + 30 * j
        rng = np.random.default_rng(h.SEED + seed_off)
        keys = rng.choice(self.n, 10, replace=False).tolist()
        vals = h.new_images(10, h.SEED + seed_off + 1)
        before = _store_bytes(side, path)
        with self.timer('write_open') as t:
            co = side.writer(repo)
        fig('write_open', t.s, 's')
        col = co.columns['images']
        with self.timer('write_10') as t, col:
            for k, v in zip(keys, vals):
                col[k] = v
        fig('write_10', t.s, 's')
        with self.timer('commit_10') as t:
            side.commit(co, f'change 10 samples ({j})')
        fig('commit_10', t.s, 's')
        col = co.columns['images']
        for k, v in zip(keys, vals):  # untimed: the commit holds the new values
            assert np.array_equal(col[k], v), k
        side.close(co)
        after = _store_bytes(side, path)
        growth = {k: after[2].get(k, 0) - before[2].get(k, 0) for k in after[2]}
        fig('growth_10', after[0] - before[0], 'bytes', per_entry={k: v for k, v in growth.items() if v})

    # ------------------------------------------------------------------ scratch repositories

    def plain_adds(self, images: np.ndarray) -> None:
        side, m = self.side, min(self.a.plain_n, self.n)
        self.log(f'{m} plain adds')
        path = self.root / 'plain'
        repo = side.init(path)
        co = side.writer(repo)
        col = side.add_column(co, 'images', IMG_SHAPE, np.uint8)
        with self.timer('add_plain') as t:
            for i in range(m):
                col[i] = images[i]
        self.emit.fig('add_plain', m / t.s, 'samples/s', seconds=t.s, samples=m)
        side.close(co)
        del col, co, repo
        shutil.rmtree(path, ignore_errors=True)

    def bulk_adds(self, images: np.ndarray) -> None:
        side, n = self.side, self.n
        self.log('update_batch')
        path = self.root / 'bulk'
        repo = side.init(path)
        co = side.writer(repo)
        col = side.add_column(co, 'images', IMG_SHAPE, np.uint8)
        keys = list(range(n))
        with self.timer('update_batch') as t:
            side.update_batch(col, keys, images)
        self.emit.fig('update_batch', n / t.s, 'samples/s', seconds=t.s)
        assert len(col) == n
        side.close(co)
        del col, co, repo
        shutil.rmtree(path, ignore_errors=True)


def worker_main(a: argparse.Namespace) -> None:
    anchor = Path(a.anchor)
    side = HangarfsSide(anchor) if a.worker == 'hangarfs' else HangarSide(anchor)
    Worker(side, a).run()


# ============================================================================ the runner


@dataclass(frozen=True)
class Figure:
    label: str
    unit: str
    better: str  # 'higher' or 'lower'


FIGURES = {
    'add_with': Figure('add images, per sample in a `with col:` loop', 'samples/s', 'higher'),
    'add_plain': Figure('add images, per sample without `with` (each durable)', 'samples/s', 'higher'),
    'update_batch': Figure('add images, `update_batch` (Hangar: `update(dict)`)', 'samples/s', 'higher'),
    'add_labels_with': Figure('add labels, per sample in a `with col:` loop', 'samples/s', 'higher'),
    'commit_ingest': Figure('commit of the ingest (N images + N labels)', 's', 'lower'),
    'commit_10': Figure('commit of 10 changed samples', 's', 'lower'),
    'commit_10_scaling': Figure('10-sample commit: time at big N / time at N', 'x', 'lower'),
    'read_open': Figure('open a read checkout', 's', 'lower'),
    'write_open': Figure('open a write checkout', 's', 'lower'),
    'read_key_order': Figure('read images in key order, one at a time', 'samples/s', 'higher'),
    'read_random': Figure('read images in random order, one at a time', 'samples/s', 'higher'),
    'get_batch': Figure('`get_batch`, random order (Hangar: `co[[(col, k), ...]]`)', 'samples/s', 'higher'),
    'get_batch_epoch': Figure(
        '`get_batch` of `--epoch-read` keys of an epoch, random order, reader prepared', 'samples/s', 'higher'
    ),
    'get_batch_epoch_keys': Figure(
        '`get_batch` of `--epoch-read` keys of an epoch, key order, reader prepared', 'samples/s', 'higher'
    ),
    'repo_bytes': Figure('repository size on disk', 'bytes', 'lower'),
    'repo_ratio': Figure('repository size / raw (784 + 8 B a sample)', 'x', 'lower'),
    'growth_10': Figure('disk growth of a 10-sample commit', 'bytes', 'lower'),
}

# (figure, at which size: 'n' or 'big', target or None); targets from issue 2
ROWS: list[tuple[str, str, float | None]] = [
    ('add_with', 'n', 50_000),
    ('add_with', 'big', 50_000),
    ('add_plain', 'n', None),
    ('update_batch', 'n', 500_000),
    ('add_labels_with', 'n', None),
    ('commit_ingest', 'n', 0.3),
    ('commit_ingest', 'big', None),
    ('commit_10', 'n', 0.02),
    ('commit_10', 'big', 0.02),
    ('commit_10_scaling', 'big', None),
    ('read_open', 'n', 0.01),
    ('read_open', 'big', 0.01),
    ('write_open', 'n', 0.01),
    ('write_open', 'big', 0.01),
    ('read_key_order', 'n', None),
    ('read_random', 'n', 30_000),
    ('read_random', 'big', 30_000),
    ('get_batch', 'n', 300_000),
    ('get_batch', 'big', 300_000),
    ('get_batch_epoch', 'big', 300_000),
    ('get_batch_epoch_keys', 'big', 1_000_000),
    ('repo_bytes', 'n', None),
    ('repo_bytes', 'big', None),
    ('repo_ratio', 'n', 0.7),
    ('repo_ratio', 'big', 0.7),
    ('growth_10', 'n', 100_000),
    ('growth_10', 'big', 100_000),
]


def fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return '–'
    if unit == 'samples/s':
        return f'{v:,.0f}/s' if v >= 100 else f'{v:,.1f}/s'
    if unit == 's':
        if v >= 1:
            return f'{v:.2f} s'
        if v >= 1e-3:
            return f'{v * 1e3:.1f} ms'
        return f'{v * 1e6:.0f} µs'
    if unit == 'bytes':
        if abs(v) >= 1e6:
            return f'{v / 1e6:,.1f} MB'
        if abs(v) >= 1e3:
            return f'{v / 1e3:,.1f} KB'
        return f'{v:,.0f} B'
    if unit == 'x':
        return f'{v:.2f}x'
    return f'{v:g} {unit}'


def fmt_target(target: float | None, fig: Figure) -> str:
    if target is None:
        return '–'
    op = '>=' if fig.better == 'higher' else '<='
    if fig.unit == 'bytes':
        return f'{op} {target / 1e3:,.0f} KB'
    return f'{op} {fmt_value(target, fig.unit)}'


def summarize(values: list[float]) -> dict[str, Any]:
    return {
        'median': statistics.median(values),
        'min': min(values),
        'max': max(values),
        'values': values,
    }


class Results:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add_file(self, path: Path) -> None:
        if path.exists():
            with open(path) as fh:
                self.records.extend(json.loads(line) for line in fh if line.strip())

    def values(self, side: str, figure: str, n: int) -> list[float]:
        return [
            r['value']
            for r in self.records
            if r['kind'] == 'figure' and r['side'] == side and r['figure'] == figure and r['n'] == n
        ]

    def median(self, side: str, figure: str, n: int) -> float | None:
        v = self.values(side, figure, n)
        return statistics.median(v) if v else None

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r['kind'] == kind]


def build_rows(res: Results, n: int, big_n: int) -> list[dict[str, Any]]:
    rows = []
    for figure, at, target in ROWS:
        size = n if at == 'n' else big_n
        if not size:
            continue
        fig = FIGURES[figure]
        entry: dict[str, Any] = {
            'figure': figure,
            'n': size,
            'label': fig.label,
            'unit': fig.unit,
            'better': fig.better,
            'target': target,
            'n_text': f'{big_n:,} / {n:,}' if figure == 'commit_10_scaling' else f'{size:,}',
        }
        for side in ('hangarfs', 'hangar'):
            if figure == 'commit_10_scaling':
                big, small = res.median(side, 'commit_10', big_n), res.median(side, 'commit_10', n)
                entry[side] = {'median': big / small} if big and small else None
            else:
                vals = res.values(side, figure, size)
                entry[side] = summarize(vals) if vals else None
        ours = entry['hangarfs']['median'] if entry['hangarfs'] else None
        theirs = entry['hangar']['median'] if entry['hangar'] else None
        entry['times_better'] = None
        if ours and theirs:
            entry['times_better'] = ours / theirs if fig.better == 'higher' else theirs / ours
        entry['ratio_text'] = fmt_times(entry['times_better'])
        if ours == 0 and theirs and fig.better == 'lower':
            entry['ratio_text'] = 'hangarfs 0'
        entry['status'] = None
        if target is not None and ours is not None:
            ok = ours >= target if fig.better == 'higher' else ours <= target
            entry['status'] = 'PASS' if ok else 'MISS'
        rows.append(entry)
    return rows


def fmt_times(tb: float | None) -> str:
    if tb is None:
        return '–'
    word, x = ('better', tb) if tb >= 1 else ('worse', 1 / tb)
    return f'{x:,.0f}x {word}' if x >= 100 else f'{x:,.1f}x {word}'


def render_table(rows: list[dict[str, Any]]) -> str:
    head = ['figure', 'N', 'hangarfs', 'Hangar 0.5.2', 'hangarfs vs Hangar', 'target', '']
    body = []
    for e in rows:
        body.append(
            [
                e['label'],
                e['n_text'],
                fmt_value(e['hangarfs']['median'] if e['hangarfs'] else None, e['unit']),
                fmt_value(e['hangar']['median'] if e['hangar'] else None, e['unit']),
                e['ratio_text'],
                fmt_target(e['target'], FIGURES[e['figure']]),
                e['status'] or '',
            ]
        )
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    right = {1, 2, 3, 4}

    def line(cells: list[str]) -> str:
        out = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return '| ' + ' | '.join(out) + ' |'

    sep = '|' + '|'.join(('-' * (w + 1) + ':') if i in right else '-' * (w + 2) for i, w in enumerate(widths))
    return '\n'.join([line(head), sep + '|', *(line(r) for r in body)])


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {'platform': platform.platform(), 'cpus': os.cpu_count()}
    with contextlib.suppress(OSError), open('/proc/cpuinfo') as fh:
        for line in fh:
            if line.startswith('model name'):
                info['cpu_model'] = line.split(':', 1)[1].strip()
                break
    with contextlib.suppress(OSError), open('/proc/meminfo') as fh:
        info['mem_total'] = fh.readline().split(':', 1)[1].strip()
    with contextlib.suppress(OSError):
        info['loadavg_at_start'] = open('/proc/loadavg').read().split()[:3]  # noqa: SIM115
    return info


def git_info() -> dict[str, Any]:
    """The checked-out commit and whether the tree has local changes (read-only git calls)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ['git', '-C', str(bl.ROOT), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    return {'commit': git('rev-parse', '--short', 'HEAD'), 'dirty': bool(git('status', '--porcelain'))}


def jobs(a: argparse.Namespace) -> Iterator[tuple[str, str, int, int]]:
    sides = ['hangarfs'] if a.skip_hangar else ['hangarfs', 'hangar']
    for run in range(1, a.repeats + 1):
        for side in sides:
            yield side, 'standard', a.n, run
    if a.big_n:
        for side in sides:
            yield side, 'big', a.big_n, 1


def run_worker(
    a: argparse.Namespace, side: str, suite: str, n: int, run: int, workdir: Path, emit: Path
) -> int:
    python = a.hangarfs_python if side == 'hangarfs' else a.hangar_python
    cmd = [
        python,
        str(Path(__file__).resolve()),
        '--worker',
        side,
        '--suite',
        suite,
        '--n',
        str(n),
        '--run',
        str(run),
        '--emit',
        str(emit),
        '--workdir',
        str(workdir),
        '--anchor',
        str(a.anchor),
        '--batch',
        str(a.batch),
        '--plain-n',
        str(a.plain_n),
        '--big-read',
        str(a.big_read),
        '--epoch-read',
        str(a.epoch_read),
        '--small-commits',
        str(a.small_commits),
    ]
    if a.profile:
        cmd += ['--profile', str(Path(a.profile).resolve())]
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
    proc = subprocess.run(cmd, stdout=sys.stderr, env=env, check=False)
    return proc.returncode


def runner_main(a: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    started = time.strftime('%Y-%m-%d %H:%M:%S %z')
    if not Path(a.anchor).is_file():
        raise SystemExit(f'hangar_anchor.py not found at {a.anchor}; pass --anchor PATH')
    if not a.skip_hangar and not Path(a.hangar_python).exists():
        raise SystemExit(
            f'no Hangar interpreter at {a.hangar_python}: run bash {Path(a.anchor).parent}/install_hangar.sh '
            'or pass --hangar-python, or --skip-hangar'
        )
    if a.profile:
        os.makedirs(a.profile, exist_ok=True)
    machine = machine_info()
    res = Results()
    failures = []
    workdir = Path(tempfile.mkdtemp(prefix='hangarfs-engine-bench-', dir=a.workdir))
    try:
        for side, suite, n, run in jobs(a):
            emit = workdir / f'{side}-{suite}-{n}-{run}.jsonl'
            print(f'[engine bench] {side} {suite} n={n:,} run {run} ...', file=sys.stderr, flush=True)
            t = time.perf_counter()
            rc = run_worker(a, side, suite, n, run, workdir, emit)
            print(
                f'[engine bench] {side} {suite} n={n:,} run {run}: {time.perf_counter() - t:.1f} s'
                + (f', FAILED (exit {rc})' if rc else ''),
                file=sys.stderr,
                flush=True,
            )
            res.add_file(emit)
            if rc:
                failures.append({'side': side, 'suite': suite, 'n': n, 'run': run, 'exit': rc})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    digests: dict[int, set[str]] = {}
    for r in res.of_kind('data'):
        digests.setdefault(r['n'], set()).add(r['digest'])
    same_data = all(len(d) == 1 for d in digests.values())
    if not same_data:
        failures.append({'error': f'the two sides generated different data: {digests}'})
    rows = build_rows(res, a.n, a.big_n)
    runtime = time.perf_counter() - t0
    env = {}
    for r in res.of_kind('env'):
        env.setdefault(r['side'], {k: v for k, v in r.items() if k not in ('kind', 'suite', 'n', 'run')})
    doc = {
        'benchmark': 'hangarfs engine vs Hangar 0.5.2 (issue 2)',
        'started': started,
        'command': ' '.join([Path(sys.executable).name, *sys.argv]),
        'params': {k: v for k, v in vars(a).items() if k not in ('worker', 'suite', 'run', 'emit', 'json')},
        'machine': machine,
        'git': git_info(),
        'environments': env,
        'data_digests': {str(k): sorted(v) for k, v in digests.items()},
        'runtime_s': round(runtime, 1),
        'failures': failures,
        'rows': rows,
        'records': [r for r in res.records if r['kind'] == 'figure'],
    }
    print_report(doc)
    print(JSON_MARKER)
    print(json.dumps(doc, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(doc, indent=1) + '\n')
    return 1 if failures else 0


def print_report(doc: dict[str, Any]) -> None:
    """The human-readable part of the output: a heading, the Markdown table, runtime and failures."""
    p, machine = doc['params'], doc['machine']
    print(f'## Engine benchmark, {doc["started"]}\n')
    print(
        f'N = {p["n"]:,}, big N = {p["big_n"]:,}; {p["repeats"]} run(s) at N, 1 at big N, medians; '
        f'{p["small_commits"]} small commits a run; get_batch {p["batch"]} keys a call; '
        f'{machine.get("cpus")} CPUs ({machine.get("cpu_model", "?")}).'
    )
    if p.get('profile'):
        print('\n**Profiled run: hangarfs timings include cProfile overhead.**')
    print()
    print(render_table(doc['rows']))
    same = all(len(d) == 1 for d in doc['data_digests'].values())
    print(f'\nruntime {doc["runtime_s"]:.0f} s; same data on both sides: {same}')
    for f in doc['failures']:
        print(f'FAILED: {f}')


def render_main(path: str) -> int:
    """Print the report of a saved JSON document again (rows rebuilt from its records)."""
    doc = json.loads(Path(path).read_text())
    res = Results()
    res.records = doc['records']
    doc['rows'] = build_rows(res, doc['params']['n'], doc['params']['big_n'])
    print_report(doc)
    return 1 if doc['failures'] else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, default=100_000, help='samples in the standard suite')
    ap.add_argument('--big-n', type=int, default=1_000_000, help='samples in the scale suite (0 = skip)')
    ap.add_argument('--repeats', type=int, default=3, help='runs of the standard suite per side')
    ap.add_argument('--skip-hangar', action='store_true', help='run the hangarfs side only')
    ap.add_argument('--json', default=None, help='also write the JSON document to this file')
    ap.add_argument('--batch', type=int, default=512, help='keys per get_batch call')
    ap.add_argument('--plain-n', type=int, default=20_000, help='adds without `with` (Hangar: ~60 s)')
    ap.add_argument('--big-read', type=int, default=20_000, help='random reads in the scale suite')
    ap.add_argument(
        '--epoch-read', type=int, default=200_000, help='epoch keys read by prepared readers (big suite)'
    )
    ap.add_argument('--small-commits', type=int, default=3, help='10-sample commits a suite')
    ap.add_argument('--anchor', default=str(bl.DEFAULT_ANCHOR), help='path of hangar_anchor.py')
    ap.add_argument('--hangar-python', default=bl.DEFAULT_HANGAR_PYTHON, help='interpreter with hangar 0.5.2')
    ap.add_argument('--hangarfs-python', default=sys.executable, help='interpreter with hangarfs')
    ap.add_argument('--workdir', default=None, help='where the temporary directory goes')
    ap.add_argument('--profile', default=None, help='dump a cProfile of every timed hangarfs phase here')
    ap.add_argument(
        '--render', metavar='JSON', help='print the report of a saved --json document; run nothing'
    )
    ap.add_argument('--worker', choices=['hangarfs', 'hangar'], help=argparse.SUPPRESS)
    ap.add_argument('--suite', choices=['standard', 'big'], help=argparse.SUPPRESS)
    ap.add_argument('--run', type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument('--emit', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker_main(a)
        return 0
    if a.render:
        return render_main(a.render)
    return runner_main(a)


if __name__ == '__main__':
    sys.exit(main())
