#!/usr/bin/env python
"""Read-only mount benchmark (issue 4): hangarfs mounts beside the native filesystem, in one run.

    .venv/bin/python scripts/bench/mount.py --quick                       # scaled down, ~2 min
    .venv/bin/python scripts/bench/mount.py --json /tmp/mount-bench.json  # full, ~15 min (root)
    .venv/bin/python scripts/bench/mount.py --workdir /var/tmp/hb         # build once, reuse next time

What it builds (cached in ``--workdir``, which is kept; the default temporary one is removed unless
``--keep``; rebuilt when their storage format changed): repositories of N MNIST-shaped samples
(``images``, (784,) uint8, keys 0..N-1, from ``make_data`` of ``../shared/bench/hangar_anchor.py``;
ingested with ``update_batch`` in 100k chunks and committed) for N = 1M (``--n-big``), 100k
(``--n-stat``) and 10k (``--n-small``); and one of a single 1 GiB float32 sample (``--big-bytes``; a
random walk, the cumsum of N(0, 0.01) noise) in an hdf5 column with blosc zstd (``--complevel``,
default 5, byte shuffle). The same files are written to tmpfs (``/dev/shm``) and
to the local disk beside the work directory: every ``.npy`` byte-identical to what the mount serves,
except the 1M listing, which is 1M *empty* files of the same names on tmpfs (``ls -f`` reads names only).

What it measures (hangarfs, tmpfs, ratio, local disk):

- mount: wall time of ``hangarfs mount REPO MP --ref DIGEST`` (returns once the daemon answered
  FUSE's INIT), median of ``--mount-rounds``, at 10k and 1M samples, beside ``mount -t tmpfs``;
- ``ls -f`` of the 1M-sample column on a fresh mount after ``drop_caches``, and the daemon's VmRSS
  before/after (``/proc/PID/status``);
- ``find DIR -printf '%s\\n'`` (a stat of every file) of the 100k column, fresh mount after
  ``drop_caches``; the disk column is also after ``drop_caches``;
- sequential read of the 1 GiB sample with 1 MiB ``readinto`` calls: cold (fresh mount after
  ``drop_caches``) and warm (the second read on that mount); also on a fresh mount with the repository
  file still in the page cache (the daemon's own speed), and, as an experiment, with the mount's
  readahead raised to 1 MiB (``/sys/class/bdi/MAJOR:MINOR/read_ahead_kb``, default 128 KiB, which caps
  the kernel's FUSE read requests at 128 KiB whatever ``max_read`` and ``max_readahead`` say);
- the first 4 KiB of that sample on a fresh mount after ``drop_caches``: the daemon's ``/proc/PID/io``
  (``rchar``: bytes its read calls returned, data file and ``/dev/fuse``; ``read_bytes``: bytes fetched
  from the block device) before/after, and with ``strace`` on the daemon (when installed) the kernel's
  FUSE read requests and the data file's ``pread64`` calls, from which the decompressed chunks follow;
- ``numpy.load`` of 20k random samples (fixed seed) of the 100k column, cold (fresh mount after
  ``drop_caches``) and warm (the same list again on that mount);
- the same mount, stat and ``numpy.load`` figures on a branch mount (``--ref master``, same content):
  branch mounts cannot use the kernel's no-open mode and use 0.5 s timeouts;
- ``fio`` (``--ioengine=psync --bs=4k --readonly``) ``--rw=read`` and ``--rw=randread`` over the 1 GiB
  file: cold (fresh mount after ``drop_caches``, ``--invalidate=1``) and warm (after a whole read,
  ``--invalidate=0``); runs stop after ``--fio-runtime`` seconds.

The ls, stat, numpy.load and read steps run ``--repeats`` times (hangarfs and native alternating) and
report medians; every run is in the JSON. Cold figures need root (``drop_caches``); without it the
JSON says ``cold_is_cold: false``. ``fuseops.py`` (beside this script) shows which FUSE requests a
command causes and how long the daemon takes for each: use it on the misses. Output: a Markdown
table, then a marker line and one JSON document on stdout (also written to ``--json``). All mounts are
unmounted and all temporary files removed at exit, also on errors and SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import benchlib as bl
import numpy as np

JSON_MARKER = '=== mount benchmark JSON ==='
BUILD_CHUNK = 100_000


# ============================================================================ repositories


def storage_formats() -> dict[str, str]:
    """The on-disk formats of this hangarfs: a cached repository of another format is rebuilt."""
    from hangarfs.backends import hdf5
    from hangarfs.engine import store

    return {'repository': store.FORMAT_TEXT.strip(), 'hdf5': hdf5.FORMAT}


def cached(path: Path, want: dict[str, Any], probe: Any) -> dict[str, Any] | None:
    """The build record of a cached repository if it was built for ``want`` and still reads."""
    marker = path / 'bench-built.json'
    if not marker.exists():
        return None
    built = json.loads(marker.read_text())
    if {k: built.get(k) for k in want} != want:
        return None
    try:
        probe(path, built)
    except Exception as err:  # the code changed under the cache: build again
        bl.log(f'cached {path} does not read ({err}); rebuilding')
        return None
    return built


def probe_sample(column: str, key: int) -> Any:
    def probe(path: Path, built: dict[str, Any]) -> None:
        from hangarfs import Repository

        repo = Repository(path)
        co = repo.checkout(commit=built['commit'])
        try:
            co.columns[column].read_bytes(co.columns[column].info(key), 0, 4096, key=key)
        finally:
            co.close()

    return probe


def build_mnist(workdir: Path, n: int, h: Any) -> tuple[Path, str]:
    """A repository of n MNIST-shaped images, committed; (path, commit digest). Cached in workdir."""
    from hangarfs import Repository

    path = workdir / f'mnist-{n}'
    marker = path / 'bench-built.json'
    want = {'kind': 'mnist', 'n': n, 'seed': h.SEED, 'formats': storage_formats()}
    built = cached(path, want, probe_sample('images', n - 1))
    if built is not None:
        return path, built['commit']
    shutil.rmtree(path, ignore_errors=True)
    bl.log(f'building {path} ({n:,} samples)')
    t0 = time.perf_counter()
    images, _ = h.make_data(n)
    repo = Repository(path, exists=False)
    repo.init(user_name='bench', user_email='bench@example.org')
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('images', shape=(784,), dtype=np.uint8)
        for start in range(0, n, BUILD_CHUNK):
            stop = min(n, start + BUILD_CHUNK)
            col.update_batch(list(range(start, stop)), images[start:stop])
        digest = co.commit(f'{n} MNIST-shaped images')
    marker.write_text(json.dumps({**want, 'commit': digest, 'build_s': round(time.perf_counter() - t0, 1)}))
    bl.log(f'built {path} in {time.perf_counter() - t0:.1f} s')
    return path, digest


def volume_shape(nbytes: int) -> tuple[int, int, int]:
    return (max(1, nbytes // (4 * bl.MiB)), 1024, 1024)


def build_volume(workdir: Path, nbytes: int, complevel: int) -> tuple[Path, str, dict[str, Any]]:
    """A repository holding one float32 sample of ``nbytes``, hdf5 + blosc zstd; cached in workdir."""
    from hangarfs import Repository

    shape = volume_shape(nbytes)
    path = workdir / f'volume-{nbytes}-zstd{complevel}'
    marker = path / 'bench-built.json'
    want = {'kind': 'volume', 'shape': list(shape), 'complevel': complevel, 'formats': storage_formats()}
    built = cached(path, want, probe_sample('volume', 0))
    if built is not None:
        return path, built['commit'], built
    shutil.rmtree(path, ignore_errors=True)
    bl.log(f'building {path} (one {np.prod(shape) * 4 / bl.GiB:.2f} GiB float32 sample)')
    t0 = time.perf_counter()
    arr = bl.smooth_volume(shape)
    repo = Repository(path, exists=False)
    repo.init(user_name='bench', user_email='bench@example.org')
    options = {'complib': 'blosc:zstd', 'complevel': complevel, 'shuffle': 'byte'}
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column(
            'volume', shape=shape, dtype=np.float32, backend='hdf5', backend_options=options
        )
        col[0] = arr
        digest = co.commit('one smooth float32 volume')
    stored = bl.dir_bytes(path / '.hangarfs' / 'data')
    info = {
        **want,
        'commit': digest,
        'raw_bytes': int(arr.nbytes),
        'stored_bytes': stored,
        'backend_options': options,
        'build_s': round(time.perf_counter() - t0, 1),
    }
    marker.write_text(json.dumps(info))
    bl.log(f'built {path} in {info["build_s"]} s; stored/raw {stored / arr.nbytes:.3f}')
    return path, digest, info


def chunk_bytes_of(repo: Path) -> int:
    import h5py

    files = sorted((repo / '.hangarfs' / 'data').rglob('*.h5'))
    with h5py.File(files[0], 'r') as f:
        return int(f.attrs['chunk_bytes'])


# ============================================================================ native copies


def write_native_images(dirs: list[Path], keys: list[int], rows: np.ndarray) -> None:
    for d in dirs:
        t, _ = bl.timed(lambda d=d: bl.write_npy_files(d, keys, rows))
        bl.log(f'wrote {len(keys):,} .npy files to {d} in {t:.1f} s')


def write_empty_names(directory: Path, n: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    flags = os.O_CREAT | os.O_WRONLY
    for k in range(n):
        os.close(os.open(directory / f'{k}.npy', flags, 0o644))
    os.close(os.open(directory / '.schema.json', flags, 0o644))


# ============================================================================ measurements


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.mounts = bl.Mounts(args.hangarfs)
        self.scratch = bl.Scratch()
        self.report = bl.Report('hangarfs read-only mount benchmark (issue 4)', JSON_MARKER, sys.argv)
        self.cold_ok = bl.can_drop_caches()
        if not self.cold_ok:
            bl.log('not root: cannot drop caches; "cold" figures will be warm-cache figures')
        self.details = self.report.details
        self.details['cold_is_cold'] = self.cold_ok

    def cold(self) -> None:
        bl.drop_caches()

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        a = self.args
        self.work = bl.workdir_setup(a.workdir, a.keep, self.scratch, 'hangarfs-mount-bench-')
        self.shm = self.scratch.make(bl.SHM, 'hangarfs-mount-bench-')
        self.disk = self.scratch.make(self.work, 'native-')
        self.mnt = self.scratch.make(self.work, 'mnt-')
        h = bl.anchor_functions(Path(a.anchor))
        self.repos: dict[int, tuple[Path, str]] = {}
        for n in sorted({a.n_small, a.n_stat, a.n_big}):
            self.repos[n] = build_mnist(self.work, n, h)
        self.vol_repo, self.vol_commit, vol_info = build_volume(self.work, a.big_bytes, a.complevel)
        self.details['volume'] = {
            **vol_info,
            'stored_over_raw': round(vol_info['stored_bytes'] / vol_info['raw_bytes'], 4),
            'chunk_bytes': chunk_bytes_of(self.vol_repo),
        }
        self.details['repositories'] = {
            str(n): {'path': str(p), 'commit': c} for n, (p, c) in self.repos.items()
        }

        # native copies
        images, _ = h.make_data(a.n_stat)
        self.images = images
        self.native_images = self.shm / 'images'
        self.disk_images = self.disk / 'images'
        write_native_images([self.native_images, self.disk_images], list(range(a.n_stat)), images)
        self.native_list = self.shm / 'names'
        t, _ = bl.timed(lambda: write_empty_names(self.native_list, a.n_big))
        bl.log(f'made {a.n_big:,} empty files in {self.native_list} in {t:.1f} s')
        shape = volume_shape(a.big_bytes)
        vol = bl.smooth_volume(shape)
        header = bl.npy_header(np.float32, shape)
        self.native_vol = self.shm / 'volume.npy'
        self.disk_vol = self.disk / 'volume.npy'
        for p in (self.native_vol, self.disk_vol):
            with open(p, 'wb') as fh:
                fh.write(header)
                fh.write(memoryview(vol).cast('B'))
        self.vol_size = len(header) + vol.nbytes
        del vol
        rng = np.random.default_rng(2026)
        self.load_keys = rng.choice(a.n_stat, min(a.loads, a.n_stat), replace=False).tolist()
        os.sync()
        self.report.sample_load()

    def mp(self, name: str) -> Path:
        return self.mnt / name

    # ------------------------------------------------------------------ mount time

    def mount_time(self) -> None:
        a = self.args
        times: dict[str, list[float]] = {'small': [], 'big': [], 'branch': [], 'tmpfs': []}
        for _ in range(a.mount_rounds):
            for label, n, ref in (
                ('small', a.n_small, None),
                ('big', a.n_big, None),
                ('branch', a.n_stat, 'master'),
            ):
                repo, commit = self.repos[n]
                with self.mounts.mounted(repo, self.mp('m'), '--ref', ref or commit) as (t, _pid):
                    assert (self.mp('m') / 'images').is_dir()
                times[label].append(t)
            tmp = self.mp('tmpfs')
            tmp.mkdir(exist_ok=True)
            if os.geteuid() == 0:
                times['tmpfs'].append(bl.timed_cmd(['mount', '-t', 'tmpfs', 'tmpfs', str(tmp)]))
                bl.run(['umount', str(tmp)])
        cold: float | None = None
        if self.cold_ok:  # one cold start: python, the package and the repository all off disk
            self.cold()
            repo, commit = self.repos[a.n_big]
            with self.mounts.mounted(repo, self.mp('m'), '--ref', commit) as (cold, _pid):
                pass
        self.details['mount_times_s'] = {**times, 'cold_big': cold}
        native = bl.median(times['tmpfs']) if times['tmpfs'] else None
        small, big, branch = bl.median(times['small']), bl.median(times['big']), bl.median(times['branch'])
        r = self.report
        r.add(
            bl.Figure(
                'mount_small',
                f'mount a commit of {a.n_small:,} samples (median of {a.mount_rounds})',
                's',
                small,
                native,
                higher_is_better=False,
                target='<= 1 s',
                passed=small <= 1.0,
                note='native: `mount -t tmpfs`',
            )
        )
        r.add(
            bl.Figure(
                'mount_big',
                f'mount a commit of {a.n_big:,} samples (median of {a.mount_rounds})',
                's',
                big,
                native,
                higher_is_better=False,
                target='<= 1 s',
                passed=big <= 1.0,
            )
        )
        grow = big / small
        r.add(
            bl.Figure(
                'mount_growth',
                f'mount time at {a.n_big:,} / at {a.n_small:,} samples',
                'x',
                grow,
                target='independent (<= 1.2x)',
                passed=grow <= 1.2 or big - small <= 0.05,
            )
        )
        if cold is not None:
            r.add(
                bl.Figure(
                    'mount_big_cold',
                    f'mount a commit of {a.n_big:,} samples, after drop_caches',
                    's',
                    cold,
                    higher_is_better=False,
                    note='one run, Python and the repository read from disk',
                )
            )
        r.add(
            bl.Figure(
                'mount_branch',
                f'mount a branch (--ref master) of {a.n_stat:,} samples (median)',
                's',
                branch,
                native,
                higher_is_better=False,
            )
        )

    # ------------------------------------------------------------------ ls -f of 1M

    def listing(self) -> None:
        a = self.args
        repo, commit = self.repos[a.n_big]
        mp = self.mp('ls')
        runs = []
        for _ in range(a.repeats):
            self.cold()
            with self.mounts.mounted(repo, mp, '--ref', commit) as (_t, pid):
                rss0 = bl.daemon_rss(pid)
                t_cold = bl.timed_cmd(['ls', '-f', str(mp / 'images')])
                rss1 = bl.daemon_rss(pid)
                t_warm = bl.timed_cmd(['ls', '-f', str(mp / 'images')])
                rss2 = bl.daemon_rss(pid)
                count = len(bl.run(['ls', '-f', str(mp / 'images')]).stdout.splitlines())
            native_cold = bl.timed_cmd(['ls', '-f', str(self.native_list)])
            native_warm = bl.timed_cmd(['ls', '-f', str(self.native_list)])
            native_count = len(bl.run(['ls', '-f', str(self.native_list)]).stdout.splitlines())
            assert count == native_count == a.n_big + 3, (count, native_count)
            runs.append(
                {
                    'cold_s': t_cold,
                    'warm_s': t_warm,
                    'tmpfs_first_s': native_cold,
                    'tmpfs_second_s': native_warm,
                    'rss_before': rss0['VmRSS'],
                    'rss_after_first': rss1['VmRSS'],
                    'rss_after_second': rss2['VmRSS'],
                    'rss_peak': rss2['VmHWM'],
                    'growth': rss1['VmRSS'] - rss0['VmRSS'],
                }
            )
        self.details['ls'] = {'entries': a.n_big + 3, 'runs': runs}
        m = med(runs)
        growth = m['growth'] / bl.MB
        r = self.report
        r.add(
            bl.Figure(
                'ls_cold',
                f'`ls -f` of a {a.n_big:,}-sample column, fresh mount',
                's',
                m['cold_s'],
                m['tmpfs_first_s'],
                higher_is_better=False,
                target='<= 5 s',
                passed=m['cold_s'] <= 5.0,
                note=f'native: {a.n_big:,} empty files of the same names on tmpfs{self.of_runs}',
            )
        )
        r.add(
            bl.Figure(
                'ls_warm',
                f'`ls -f` of the {a.n_big:,}-sample column again',
                's',
                m['warm_s'],
                m['tmpfs_second_s'],
                higher_is_better=False,
            )
        )
        r.add(
            bl.Figure(
                'ls_rss',
                "daemon's RSS growth during that first `ls -f`",
                'MB',
                growth,
                higher_is_better=False,
                target='< 200 MB',
                passed=growth < 200,
                note=(
                    f'VmRSS {m["rss_before"] / bl.MB:.1f} -> {m["rss_after_first"] / bl.MB:.1f} MB '
                    f'(after the second: {m["rss_after_second"] / bl.MB:.1f}, '
                    f'peak {m["rss_peak"] / bl.MB:.1f})'
                ),
            )
        )

    @property
    def of_runs(self) -> str:
        return f'; median of {self.args.repeats} runs' if self.args.repeats > 1 else ''

    # ------------------------------------------------------------------ stat of 100k

    def find_stat(self, ref: str, tag: str) -> dict[str, float]:
        a = self.args
        repo, _commit = self.repos[a.n_stat]
        self.cold()
        mp = self.mp('find-' + tag)
        cmd = ['find', '', '-printf', '%s\n']
        with self.mounts.mounted(repo, mp, '--ref', ref):
            cmd[1] = str(mp / 'images')
            cold = bl.timed_cmd(cmd)
            warm = bl.timed_cmd(cmd)
            lines = bl.run(cmd).stdout.splitlines()
        # entries: the directory itself, .schema.json, the samples
        assert len(lines) == a.n_stat + 2, len(lines)
        return {'cold_s': cold, 'warm_s': warm, 'entries': len(lines)}

    def native_stat(self) -> dict[str, float]:
        out: dict[str, float] = {}
        cmd = ['find', str(self.native_images), '-printf', '%s\n']
        out['tmpfs_first_s'] = bl.timed_cmd(cmd)
        out['tmpfs_second_s'] = bl.timed_cmd(cmd)
        self.cold()
        cmd = ['find', str(self.disk_images), '-printf', '%s\n']
        out['disk_cold_s'] = bl.timed_cmd(cmd)
        out['disk_warm_s'] = bl.timed_cmd(cmd)
        out['entries'] = len(bl.run(cmd).stdout.splitlines())
        return out

    def stat_figures(self) -> None:
        a = self.args
        runs = []
        for _ in range(a.repeats):
            runs.append(
                {
                    'commit': self.find_stat(self.repos[a.n_stat][1], 'commit'),
                    'native': self.native_stat(),
                    'branch': self.find_stat('master', 'branch'),
                }
            )
        self.details['stat'] = {'runs': runs}
        commit, native, branch = (med([run[k] for run in runs]) for k in ('commit', 'native', 'branch'))
        r = self.report
        n = commit['entries']
        nn = native['entries']
        rate = n / commit['cold_s']
        r.add(
            bl.Figure(
                'stat_cold',
                f"stat of every file of a {a.n_stat:,}-sample column (`find -printf '%s'`), cold",
                '/s',
                rate,
                nn / native['tmpfs_first_s'],
                nn / native['disk_cold_s'],
                target='>= 20,000/s',
                passed=rate >= 20_000,
                note=f'fresh mount after drop_caches; disk: ext4 after drop_caches{self.of_runs}',
            )
        )
        r.add(
            bl.Figure(
                'stat_warm',
                'the same `find` again (warm)',
                '/s',
                n / commit['warm_s'],
                nn / native['tmpfs_second_s'],
                nn / native['disk_warm_s'],
            )
        )
        bn = branch['entries']
        r.add(
            bl.Figure(
                'branch_stat_cold',
                'branch mount (--ref master): stat of every file, cold',
                '/s',
                bn / branch['cold_s'],
                nn / native['tmpfs_first_s'],
                nn / native['disk_cold_s'],
                note=f'{commit["cold_s"] / branch["cold_s"]:.2f}x the commit mount',
            )
        )
        r.add(
            bl.Figure(
                'branch_stat_warm',
                'branch mount: the same `find` again',
                '/s',
                bn / branch['warm_s'],
                nn / native['tmpfs_second_s'],
                nn / native['disk_warm_s'],
                note=f'{commit["warm_s"] / branch["warm_s"]:.2f}x the commit mount',
            )
        )

    # ------------------------------------------------------------------ numpy.load of 20k

    def load_loop(self, directory: Path) -> float:
        paths = [str(directory / f'{k}.npy') for k in self.load_keys]
        t0 = time.perf_counter()
        for p in paths:
            np.load(p)
        return time.perf_counter() - t0

    def check_loads(self, directory: Path) -> None:
        for k in self.load_keys[:50]:
            assert np.array_equal(np.load(directory / f'{k}.npy'), self.images[k]), k

    def mount_loads(self, ref: str, tag: str) -> dict[str, float]:
        repo, _commit = self.repos[self.args.n_stat]
        self.cold()
        mp = self.mp('load-' + tag)
        with self.mounts.mounted(repo, mp, '--ref', ref):
            cold = self.load_loop(mp / 'images')
            warm = self.load_loop(mp / 'images')
            self.check_loads(mp / 'images')
        return {'cold_s': cold, 'warm_s': warm}

    def native_loads(self) -> dict[str, float]:
        native = {'tmpfs_first_s': self.load_loop(self.native_images)}
        native['tmpfs_second_s'] = self.load_loop(self.native_images)
        self.cold()
        native['disk_cold_s'] = self.load_loop(self.disk_images)
        native['disk_warm_s'] = self.load_loop(self.disk_images)
        return native

    def load_figures(self) -> None:
        a = self.args
        k = len(self.load_keys)
        self.check_loads(self.native_images)
        runs = []
        for _ in range(a.repeats):
            runs.append(
                {
                    'commit': self.mount_loads(self.repos[a.n_stat][1], 'commit'),
                    'native': self.native_loads(),
                    'branch': self.mount_loads('master', 'branch'),
                }
            )
        self.details['numpy_load'] = {'files': k, 'runs': runs}
        commit, native, branch = (med([run[x] for run in runs]) for x in ('commit', 'native', 'branch'))
        r = self.report
        cold = bl.Figure(
            'load_cold',
            f'`numpy.load` of {k:,} random samples of {a.n_stat:,}, cold',
            '/s',
            k / commit['cold_s'],
            k / native['tmpfs_first_s'],
            k / native['disk_cold_s'],
            target='>= 0.1x tmpfs',
            note=(
                'fresh mount after drop_caches; tmpfs: first pass (its files cannot be cold); '
                f'disk: ext4 after drop_caches{self.of_runs}'
            ),
        )
        cold.passed = (cold.ratio or 0) >= 0.1
        r.add(cold)
        warm = bl.Figure(
            'load_warm',
            'the same `numpy.load`s again (warm)',
            '/s',
            k / commit['warm_s'],
            k / native['tmpfs_second_s'],
            k / native['disk_warm_s'],
            target='>= 0.5x tmpfs',
        )
        warm.passed = (warm.ratio or 0) >= 0.5
        r.add(warm)
        for when, tmpfs_key, disk_key in (
            ('cold', 'tmpfs_first_s', 'disk_cold_s'),
            ('warm', 'tmpfs_second_s', 'disk_warm_s'),
        ):
            rate = k / branch[f'{when}_s']
            r.add(
                bl.Figure(
                    f'branch_load_{when}',
                    f'branch mount: `numpy.load` of the {k:,} samples, {when}',
                    '/s',
                    rate,
                    k / native[tmpfs_key],
                    k / native[disk_key],
                    note=f'{rate / (k / commit[f"{when}_s"]):.2f}x the commit mount',
                )
            )

    # ------------------------------------------------------------------ the big sample

    def big_read_once(self) -> dict[str, float]:
        mp = self.mp('vol')
        path = mp / 'volume' / '0.npy'
        out: dict[str, float] = {}
        self.cold()
        with self.mounts.mounted(self.vol_repo, mp, '--ref', self.vol_commit):
            assert path.stat().st_size == self.vol_size
            out['cold_s'], n1 = bl.read_whole(path)
            out['warm_s'], n2 = bl.read_whole(path)
            assert n1 == n2 == self.vol_size
            self.check_same(path)
        # a fresh mount while the repository's file is still in the page cache: the daemon alone
        with self.mounts.mounted(self.vol_repo, mp, '--ref', self.vol_commit):
            out['fresh_s'], _ = bl.read_whole(path)
        if self.cold_ok:  # the same with the mount's readahead raised to 1 MiB (1 MiB FUSE reads)
            with self.mounts.mounted(self.vol_repo, mp, '--ref', self.vol_commit):
                set_readahead_kb(mp, 1024)
                out['fresh_ra1m_s'], _ = bl.read_whole(path)
            self.cold()
            with self.mounts.mounted(self.vol_repo, mp, '--ref', self.vol_commit):
                set_readahead_kb(mp, 1024)
                out['cold_ra1m_s'], _ = bl.read_whole(path)
        out['tmpfs_first_s'], _ = bl.read_whole(self.native_vol)
        out['tmpfs_second_s'], _ = bl.read_whole(self.native_vol)
        self.cold()
        out['disk_cold_s'], _ = bl.read_whole(self.disk_vol)
        out['disk_warm_s'], _ = bl.read_whole(self.disk_vol)
        return out

    def big_read(self) -> None:
        a = self.args
        gib = self.vol_size / bl.GiB
        runs = [self.big_read_once() for _ in range(a.repeats)]
        self.details['big_read'] = {'bytes': self.vol_size, 'runs': runs}
        m = med(runs)
        gb = self.vol_size / bl.GB
        v = self.details['volume']
        r = self.report
        r.add(
            bl.Figure(
                'big_cold',
                f'sequential read of a {gib:.2f} GiB float32 sample (blosc zstd), cold',
                'GB/s',
                gb / m['cold_s'],
                gb / m['tmpfs_first_s'],
                gb / m['disk_cold_s'],
                target='>= 0.8 GB/s',
                passed=gb / m['cold_s'] >= 0.8,
                note=(
                    f'fresh mount after drop_caches; stored compressed at {v["stored_over_raw"]:.3f} of raw '
                    f'({1 / v["stored_over_raw"]:.2f}:1, zstd level {a.complevel}, byte shuffle, '
                    f'{v["chunk_bytes"] // 1024} KiB chunks); read with 1 MiB readinto calls; tmpfs: first '
                    f'read; disk: the .npy on ext4 after drop_caches{self.of_runs}'
                ),
            )
        )
        warm_fig = bl.Figure(
            'big_warm',
            'the same read again (warm)',
            'GB/s',
            gb / m['warm_s'],
            gb / m['tmpfs_second_s'],
            gb / m['disk_warm_s'],
            target='>= 0.9x tmpfs',
        )
        warm_fig.passed = (warm_fig.ratio or 0) >= 0.9
        r.add(warm_fig)
        r.add(
            bl.Figure(
                'big_fresh',
                'the same read on a fresh mount, repository file in the page cache',
                'GB/s',
                gb / m['fresh_s'],
                gb / m['tmpfs_first_s'],
                note='the daemon alone: no disk reads, no FUSE page cache',
            )
        )
        if 'fresh_ra1m_s' in m:
            r.add(
                bl.Figure(
                    'big_fresh_ra1m',
                    'experiment: that read with the mount readahead at 1 MiB',
                    'GB/s',
                    gb / m['fresh_ra1m_s'],
                    gb / m['tmpfs_first_s'],
                    note=(
                        '/sys/class/bdi/<mount dev>/read_ahead_kb set to 1024 after mounting (default 128): '
                        'the kernel then sends 1 MiB FUSE reads instead of 128 KiB'
                    ),
                )
            )
            r.add(
                bl.Figure(
                    'big_cold_ra1m',
                    'experiment: the cold read with the mount readahead at 1 MiB',
                    'GB/s',
                    gb / m['cold_ra1m_s'],
                    gb / m['tmpfs_first_s'],
                    gb / m['disk_cold_s'],
                )
            )

    def check_same(self, path: Path) -> None:
        rnd = random.Random(7)
        with open(path, 'rb') as a, open(self.native_vol, 'rb') as b:
            for off in [0, self.vol_size - 4096] + [rnd.randrange(self.vol_size) for _ in range(8)]:
                a.seek(off)
                b.seek(off)
                assert a.read(65536) == b.read(65536), off

    def first_4k(self) -> None:
        mp = self.mp('vol4k')
        self.cold()
        chunk = self.details['volume']['chunk_bytes']
        out: dict[str, Any] = {}
        with self.mounts.mounted(self.vol_repo, mp, '--ref', self.vol_commit) as (_t, pid):
            path = mp / 'volume' / '0.npy'
            fuse_fd = next(
                (
                    int(fd)
                    for fd in os.listdir(f'/proc/{pid}/fd')
                    if os.readlink(f'/proc/{pid}/fd/{fd}') == '/dev/fuse'
                ),
                None,
            )
            tracer = None
            trace_file = self.mnt / 'strace.txt'
            if shutil.which('strace') and not self.args.no_strace:
                tracer = subprocess.Popen(
                    [
                        'strace',
                        '-f',
                        '-p',
                        str(pid),
                        '-e',
                        'trace=pread64,read,writev',
                        '-o',
                        str(trace_file),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)  # attached to every thread
            io0 = bl.proc_io(pid)
            fd = os.open(path, os.O_RDONLY)
            try:
                data = os.pread(fd, 4096, 0)
            finally:
                os.close(fd)
            time.sleep(0.3)
            io1 = bl.proc_io(pid)
            assert len(data) == 4096
            if tracer is not None:
                tracer.send_signal(signal.SIGINT)
                tracer.wait(timeout=10)
                out['strace'] = parse_strace(trace_file.read_text(), fuse_fd)
                trace_file.unlink()
        out['io_delta'] = {k: io1[k] - io0[k] for k in io0}
        # the same 4 KiB of the disk copy, after drop_caches: what the page cache's readahead fetches
        self.cold()
        me0 = bl.proc_io(os.getpid())
        fd = os.open(self.disk_vol, os.O_RDONLY)
        os.pread(fd, 4096, 0)
        os.close(fd)
        me1 = bl.proc_io(os.getpid())
        out['disk_read_bytes'] = me1['read_bytes'] - me0['read_bytes']
        self.details['first_4k'] = out
        rchar = out['io_delta']['rchar']
        st = out.get('strace')
        note = (
            f'daemon /proc/PID/io: rchar +{rchar:,} B (its read calls: data file and /dev/fuse), read_bytes '
            f'+{out["io_delta"]["read_bytes"]:,} B (from the block device)'
        )
        read_bytes = rchar
        decompressed = None
        if st:
            read_bytes = st['data_pread_bytes']
            decompressed = st['chunk_reads'] * chunk
            note += (
                f'; strace: the kernel asked for {st["fuse_read_bytes"]:,} B in '
                f'{st["fuse_reads"]} FUSE read(s); the daemon made {st["data_preads"]} pread64 calls '
                f'on the data file, {st["data_pread_bytes"]:,} B, '
                f'of which {st["chunk_reads"]} chunk read(s) ({st["chunk_read_bytes"]:,} B compressed) -> '
                f'{st["chunk_reads"]} x {chunk // 1024} KiB decompressed'
            )
        r = self.report
        r.add(
            bl.Figure(
                'first4k_read',
                'first 4 KiB of the big sample: bytes the daemon read',
                'MiB',
                read_bytes / bl.MiB,
                None,
                out['disk_read_bytes'] / bl.MiB,
                higher_is_better=False,
                target='< 8 MiB',
                passed=read_bytes < 8 * bl.MiB,
                note=note + '; disk: read_bytes of reading 4 KiB of the disk copy after drop_caches',
            )
        )
        if decompressed is not None:
            r.add(
                bl.Figure(
                    'first4k_decompressed',
                    'first 4 KiB of the big sample: bytes decompressed',
                    'MiB',
                    decompressed / bl.MiB,
                    higher_is_better=False,
                    target='< 8 MiB',
                    passed=decompressed < 8 * bl.MiB,
                )
            )

    # ------------------------------------------------------------------ fio

    def fio(self, path: Path, rw: str, invalidate: bool) -> dict[str, float]:
        cmd = [
            'fio',
            '--name=bench',
            f'--filename={path}',
            f'--rw={rw}',
            '--bs=4k',
            '--ioengine=psync',
            '--readonly',
            f'--invalidate={int(invalidate)}',
            f'--runtime={self.args.fio_runtime}',
            '--output-format=json',
        ]
        proc = bl.run(cmd, timeout=self.args.fio_runtime * 4 + 120)
        job = json.loads(proc.stdout[proc.stdout.index('{') :])['jobs'][0]['read']
        return {
            'MB/s': job['bw_bytes'] / bl.MB,
            'IOPS': job['iops'],
            'io_bytes': job['io_bytes'],
            'runtime_ms': job['runtime'],
            'clat_mean_us': job['clat_ns']['mean'] / 1000,
        }

    def fio_figures(self) -> None:
        if not shutil.which('fio'):
            bl.log('fio not installed (apt-get install -y fio): skipped')
            return
        res: dict[str, dict[str, dict[str, float]]] = {'hangarfs': {}, 'tmpfs': {}, 'disk': {}}
        mp = self.mp('fio')
        self.cold()
        with self.mounts.mounted(self.vol_repo, mp, '--ref', self.vol_commit):
            path = mp / 'volume' / '0.npy'
            res['hangarfs']['read_cold'] = self.fio(path, 'read', True)
            bl.read_whole(path)  # all pages cached, whatever the runtime cap cut short
            res['hangarfs']['read_warm'] = self.fio(path, 'read', False)
            res['hangarfs']['randread_warm'] = self.fio(path, 'randread', False)
        self.cold()
        with self.mounts.mounted(self.vol_repo, mp, '--ref', self.vol_commit):
            res['hangarfs']['randread_cold'] = self.fio(path, 'randread', True)
        for rw in ('read', 'randread'):
            res['tmpfs'][f'{rw}_cold'] = self.fio(self.native_vol, rw, False)
            res['tmpfs'][f'{rw}_warm'] = self.fio(self.native_vol, rw, False)
        self.cold()
        res['disk']['read_cold'] = self.fio(self.disk_vol, 'read', True)
        bl.read_whole(self.disk_vol)
        res['disk']['read_warm'] = self.fio(self.disk_vol, 'read', False)
        res['disk']['randread_warm'] = self.fio(self.disk_vol, 'randread', False)
        self.cold()
        res['disk']['randread_cold'] = self.fio(self.disk_vol, 'randread', True)
        self.details['fio'] = res
        r = self.report
        rt = self.args.fio_runtime
        for key, label, unit in (
            ('read_cold', 'fio --rw=read --bs=4k psync, cold', 'MB/s'),
            ('read_warm', 'fio --rw=read --bs=4k psync, warm', 'MB/s'),
            ('randread_cold', 'fio --rw=randread --bs=4k psync, cold', 'IOPS'),
            ('randread_warm', 'fio --rw=randread --bs=4k psync, warm', 'IOPS'),
        ):
            h = res['hangarfs'][key]
            r.add(
                bl.Figure(
                    'fio_' + key,
                    label,
                    unit,
                    h[unit],
                    res['tmpfs'][key][unit],
                    res['disk'][key][unit],
                    note=(
                        f'{h["io_bytes"] / bl.MiB:,.0f} MiB in {h["runtime_ms"] / 1000:.1f} s, mean latency '
                        f'{h["clat_mean_us"]:.1f} µs (runs stop after {rt} s)'
                    ),
                )
            )

    # ------------------------------------------------------------------ all

    def run(self) -> None:
        steps = [
            ('mount time', self.mount_time),
            ('ls -f', self.listing),
            ('stat', self.stat_figures),
            ('numpy.load', self.load_figures),
            ('big sample', self.big_read),
            ('first 4 KiB', self.first_4k),
            ('fio', self.fio_figures),
        ]
        for name, fn in steps:
            if name in self.args.skip:
                continue
            bl.log(f'--- {name}')
            t, _ = bl.timed(fn)
            self.details.setdefault('step_s', {})[name] = round(t, 1)
            self.report.sample_load()


def med(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key, the median over runs of a number (the first run's value for anything else)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        vals = [run[key] for run in runs if key in run]
        out[key] = bl.median(vals) if isinstance(value, (int, float)) else value
    return out


def set_readahead_kb(mp: Path, kb: int) -> None:
    """The readahead of a mount's backing device (``/sys/class/bdi/MAJOR:MINOR/read_ahead_kb``, root)."""
    with open('/proc/self/mountinfo') as fh:
        dev = next(line.split(' ')[2] for line in fh if line.split(' ')[4] == str(mp))
    with open(f'/sys/class/bdi/{dev}/read_ahead_kb', 'w') as fh:
        fh.write(f'{kb}\n')


def parse_strace(text: str, fuse_fd: int | None) -> dict[str, int]:
    """Sizes from ``strace -e pread64,read,writev`` of the daemon: FUSE replies and data-file reads."""
    import re

    out = {
        'fuse_reads': 0,
        'fuse_read_bytes': 0,
        'data_preads': 0,
        'data_pread_bytes': 0,
        'chunk_reads': 0,
        'chunk_read_bytes': 0,
    }
    for line in text.splitlines():
        m = re.search(r'(pread64|writev)\((\d+), .*\)\s+=\s+(\d+)', line)
        if not m:
            continue
        call, fd, ret = m.group(1), int(m.group(2)), int(m.group(3))
        if call == 'writev' and fd == fuse_fd and ret > 16 + 4096 - 1:  # a reply carrying data
            out['fuse_reads'] += 1
            out['fuse_read_bytes'] += ret - 16
        elif call == 'pread64' and fd != fuse_fd:
            out['data_preads'] += 1
            out['data_pread_bytes'] += ret
            if ret >= 64 * 1024:  # a stored chunk (HDF5 metadata reads are a few KiB)
                out['chunk_reads'] += 1
                out['chunk_read_bytes'] += ret
    return out


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        '--quick', action='store_true', help='scaled down: 100k/20k/10k samples, 128 MiB, 2k loads'
    )
    p.add_argument('--workdir', help='where repositories are built and cached (default: a temp dir)')
    p.add_argument('--keep', action='store_true', help='keep the work directory (reuse it with --workdir)')
    p.add_argument('--json', help='also write the JSON document here')
    p.add_argument('--n-big', type=int, default=1_000_000)
    p.add_argument('--n-stat', type=int, default=100_000)
    p.add_argument('--n-small', type=int, default=10_000)
    p.add_argument('--big-bytes', type=int, default=bl.GiB)
    p.add_argument('--complevel', type=int, default=5)
    p.add_argument('--loads', type=int, default=20_000)
    p.add_argument('--mount-rounds', type=int, default=5)
    p.add_argument('--repeats', type=int, default=3, help='runs of the ls, stat, numpy.load and read steps')
    p.add_argument('--fio-runtime', type=int, default=20)
    p.add_argument('--no-strace', action='store_true', help='count the first 4 KiB from /proc/PID/io only')
    p.add_argument('--skip', action='append', default=[], help='skip a step by name (repeatable)')
    p.add_argument('--anchor', default=str(bl.DEFAULT_ANCHOR))
    p.add_argument('--hangarfs', default=bl.DEFAULT_HANGARFS)
    args = p.parse_args()
    if args.quick:
        defaults = {
            'n_big': 100_000,
            'n_stat': 20_000,
            'n_small': 10_000,
            'big_bytes': 128 * bl.MiB,
            'loads': 2_000,
            'mount_rounds': 3,
            'repeats': 1,
            'fio_runtime': 3,
        }
        for k, v in defaults.items():
            if getattr(args, k) == p.get_default(k):
                setattr(args, k, v)
    return args


def main() -> None:
    args = parse_args()
    bench = Bench(args)
    bench.report.details['args'] = vars(args)
    bl.run_bench(bench, args.json)


if __name__ == '__main__':
    main()
