#!/usr/bin/env python
"""Staging mount benchmark (issue 5): writing into ``hangarfs mount --write`` beside native filesystems.

    .venv/bin/python scripts/bench/mount_write.py --quick                         # ~1 min
    .venv/bin/python scripts/bench/mount_write.py --json /tmp/mount-write.json    # full, ~4 min

A repository is built fresh in the work directory for every run (the run commits into it): one column
``images`` ((784,) uint8, the hdf5 backend by default) with ``--base`` samples committed on master.
Then ``hangarfs mount REPO MP --write --branch master`` and, in the same run:

- ``cp`` of ``--files`` (10,000) MNIST-shaped ``.npy`` files (``make_data`` of
  ``../shared/bench/hangar_anchor.py``, new keys, different data each round) from tmpfs into
  ``MP/images/``: one ``cp F1 F2 ... DIR/`` command, timed from start to exit. ``cp`` exits after its last
  ``close()``, and a file is staged when it is closed, so this is end to end (checked afterwards: every
  file listed with the right bytes). The same command into an empty tmpfs directory and an empty
  directory on the local disk (ext4, page cache, no fsync). ``--rounds`` rounds, medians; each round
  is followed by ``hangarfs -C REPO commit`` (timed, informational);
- one ``--big-bytes`` (1 GiB) float32 sample (the random walk of ``mount.py``) written into a new
  column ``volume`` (``mkdir``; schema from the first sample, default backend): ``open``, 1 MiB
  ``write`` calls, ``close``, timed from ``open`` to ``close`` returning (= staged); the same into a
  tmpfs file and a file on the local disk. Also ``cp`` of the same ``.npy`` from tmpfs (a second sample).
  Then ``hangarfs -C REPO commit``, timed from the command's start to its exit (target <= 0.5 s), beside
  the wall time of ``hangarfs --help`` (the command's own start-up); after the ``cp`` sample the commit
  is asked of the daemon's socket directly (``hangarfs.fs.control.request``), which times the daemon's
  part alone. ``--big-rounds`` rounds (3), medians.

The daemon's peak RSS (VmHWM) is reported too. Output: a Markdown table, a marker line and one JSON
document on stdout (also ``--json``). Mounts are unmounted and temporary files removed at exit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import benchlib as bl
import numpy as np

from hangarfs.fs import control

JSON_MARKER = '=== mount_write benchmark JSON ==='


def build_repo(path: Path, base: int, h: Any) -> str:
    from hangarfs import Repository

    images, _ = h.make_data(base)
    repo = Repository(path, exists=False)
    repo.init(user_name='bench', user_email='bench@example.org', remove_old=True)
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(784,), dtype=np.uint8).update_batch(list(range(base)), images)
        return co.commit(f'{base} MNIST-shaped images')


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.mounts = bl.Mounts(args.hangarfs)
        self.scratch = bl.Scratch()
        self.report = bl.Report('hangarfs staging mount benchmark (issue 5)', JSON_MARKER, sys.argv)
        self.details = self.report.details

    def setup(self) -> None:
        a = self.args
        self.work = bl.workdir_setup(a.workdir, a.keep, self.scratch, 'hangarfs-mount-write-bench-')
        self.shm = self.scratch.make(bl.SHM, 'hangarfs-mount-write-bench-')
        self.disk = self.scratch.make(self.work, 'native-')
        self.mp = self.scratch.make(self.work, 'mnt-') / 'stage'
        self.repo = self.scratch.add(self.work / 'staging-repo')
        h = bl.anchor_functions(Path(a.anchor))
        t, digest = bl.timed(lambda: build_repo(self.repo, a.base, h))
        bl.log(f'built {self.repo} ({a.base:,} samples) in {t:.1f} s')
        self.details['base_commit'] = digest
        # the files to copy: new keys, different data every round (samples are stored once by content)
        total = a.files * a.rounds
        images, _ = h.make_data(a.base + total)
        self.rounds: list[tuple[Path, list[str], np.ndarray, list[int]]] = []
        for r in range(a.rounds):
            keys = list(range(a.base + r * a.files, a.base + (r + 1) * a.files))
            rows = images[keys[0] : keys[-1] + 1]
            src = self.shm / f'src-{r}'
            bl.write_npy_files(src, keys, rows)
            self.rounds.append((src, [str(src / f'{k}.npy') for k in keys], rows, keys))
        bl.log(f'wrote {total:,} source .npy files to {self.shm}')
        shape = (max(1, a.big_bytes // (4 * bl.MiB)), 1024, 1024)
        vol = bl.smooth_volume(shape)
        self.vol_bytes = bl.npy_header(np.float32, shape) + memoryview(vol).cast('B').tobytes()
        del vol
        self.vol_src = self.shm / 'volume-src.npy'
        self.vol_src.write_bytes(self.vol_bytes)
        os.sync()
        self.report.sample_load()

    # ------------------------------------------------------------------ cp of many files

    def cp_round(self, r: int) -> dict[str, float]:
        a = self.args
        _src, files, rows, keys = self.rounds[r]
        out: dict[str, float] = {}
        dst = self.mp / 'images'
        out['hangarfs_s'] = bl.timed_cmd(['cp', *files, str(dst) + '/'])
        listed = set(os.listdir(dst))
        missing = [k for k in keys if f'{k}.npy' not in listed]
        assert not missing, f'{len(missing)} files not staged, e.g. {missing[:5]}'
        for i in (0, len(keys) // 2, len(keys) - 1):
            assert np.array_equal(np.load(dst / f'{keys[i]}.npy'), rows[i]), keys[i]
        assert len(listed) == a.base + (r + 1) * a.files + 1, len(listed)  # + .schema.json
        out['commit_s'] = bl.timed_cmd([a.hangarfs, '-C', str(self.repo), 'commit', '-m', f'cp round {r}'])
        for label, parent in (('tmpfs', self.shm), ('disk', self.disk)):
            d = parent / f'dst-{r}'
            d.mkdir()
            out[f'{label}_s'] = bl.timed_cmd(['cp', *files, str(d) + '/'])
            assert len(os.listdir(d)) == a.files
            os.sync()  # the disk's writeback must not fall on the next round
        return out

    def copy_files(self) -> None:
        a = self.args
        runs = [self.cp_round(r) for r in range(a.rounds)]
        self.details['cp'] = {'files': a.files, 'runs': runs}
        m = {k: bl.median([run[k] for run in runs]) for k in runs[0]}
        n = a.files
        rate = n / m['hangarfs_s']
        r = self.report
        r.add(
            bl.Figure(
                'cp_files',
                f'`cp` of {n:,} MNIST-shaped .npy files into the staging mount, until staged',
                '/s',
                rate,
                n / m['tmpfs_s'],
                n / m['disk_s'],
                target='>= 1,000/s',
                passed=rate >= 1000,
                note=(
                    f'one `cp F1 ... F{n} DIR/` from tmpfs; into a column of {a.base:,}+ samples; '
                    f'disk: ext4, page cache, no fsync; median of {a.rounds} rounds'
                ),
            )
        )
        r.add(
            bl.Figure(
                'cp_commit',
                f'`hangarfs commit` of those {n:,} staged files',
                's',
                m['commit_s'],
                higher_is_better=False,
                note="from the command's start to its exit (it asks the daemon over its socket)",
            )
        )

    # ------------------------------------------------------------------ one big sample

    def big_round(self, r: int) -> dict[str, Any]:
        a = self.args
        data = memoryview(self.vol_bytes)
        col = self.mp / 'volume'
        if not col.exists():
            col.mkdir()
        out: dict[str, Any] = {}
        pid = self.pid
        hwm0 = bl.daemon_rss(pid)
        out['hangarfs_s'] = bl.write_whole(col / f'{2 * r}.npy', data)
        out['daemon_rss'] = bl.daemon_rss(pid)
        out['daemon_hwm_before'] = hwm0['VmHWM']
        assert (col / f'{2 * r}.npy').stat().st_size == len(data)
        out['commit_s'] = bl.timed_cmd([a.hangarfs, '-C', str(self.repo), 'commit', '-m', f'volume {r}'])
        out['hangarfs_cp_s'] = bl.timed_cmd(['cp', str(self.vol_src), str(col / f'{2 * r + 1}.npy')])
        out['commit_socket_s'], reply = bl.timed(
            lambda: control.request(self.socket, {'op': 'commit', 'message': f'volume {r} cp'})
        )
        assert reply.get('ok'), reply
        self.check_volume(col / f'{2 * r}.npy')
        self.check_volume(col / f'{2 * r + 1}.npy')
        for label, parent in (('tmpfs', self.shm), ('disk', self.disk)):
            target = parent / f'volume-{r}.npy'
            out[f'{label}_s'] = bl.write_whole(target, data)
            out[f'{label}_cp_s'] = bl.timed_cmd(['cp', str(self.vol_src), str(parent / f'volume-cp-{r}.npy')])
            target.unlink()
            (parent / f'volume-cp-{r}.npy').unlink()
        os.sync()
        return out

    def check_volume(self, path: Path) -> None:
        size = len(self.vol_bytes)
        with open(path, 'rb') as fh:
            for off in (0, size // 3, size - 65536):
                fh.seek(off)
                assert fh.read(65536) == self.vol_bytes[off : off + 65536], (path, off)

    def big_sample(self) -> None:
        a = self.args
        runs = [self.big_round(r) for r in range(a.big_rounds)]
        schema = (self.mp / 'volume' / '.schema.json').read_text()
        self.details['big'] = {'bytes': len(self.vol_bytes), 'runs': runs, 'schema': schema}
        m = {k: bl.median([run[k] for run in runs]) for k in runs[0] if isinstance(runs[0][k], float)}
        mb = len(self.vol_bytes) / bl.MB
        rate = mb / m['hangarfs_s']
        r = self.report
        backend = json.loads(schema)
        of = f'; median of {a.big_rounds} rounds' if a.big_rounds > 1 else ''
        hwm0, hwm1 = runs[0]['daemon_hwm_before'], runs[-1]['daemon_rss']['VmHWM']
        r.add(
            bl.Figure(
                'big_write',
                f'one {len(self.vol_bytes) / bl.GiB:.2f} GiB float32 sample written, open to close (staged)',
                'MB/s',
                rate,
                mb / m['tmpfs_s'],
                mb / m['disk_s'],
                target='>= 300 MB/s',
                passed=rate >= 300,
                note=(
                    f'1 MiB write() calls from memory; new column by mkdir, backend {backend["backend"]} '
                    f'{backend["backend_options"]}; daemon VmHWM {hwm1 / bl.MB:,.0f} MB after '
                    f'(before: {hwm0 / bl.MB:,.0f} MB); disk: ext4, no fsync{of}'
                ),
            )
        )
        r.add(
            bl.Figure(
                'big_cp',
                'the same sample by `cp` from tmpfs, until staged',
                'MB/s',
                mb / m['hangarfs_cp_s'],
                mb / m['tmpfs_cp_s'],
                mb / m['disk_cp_s'],
            )
        )
        commit = m['commit_s']
        socket_s = m['commit_socket_s']
        r.add(
            bl.Figure(
                'big_commit',
                '`hangarfs commit` after that sample',
                's',
                commit,
                higher_is_better=False,
                target='<= 0.5 s',
                passed=commit <= 0.5,
                note=(
                    f"from the command's start to its exit{of}; `hangarfs --help` alone takes "
                    f'{self.cli_s * 1000:.0f} ms (median of 5)'
                ),
            )
        )
        r.add(
            bl.Figure(
                'big_commit_daemon',
                "the daemon's part: a commit after the `cp` sample, asked over the socket directly",
                's',
                socket_s,
                higher_is_better=False,
                note='`control.request(socket, {"op": "commit"})` from the benchmark process, no CLI',
            )
        )

    # ------------------------------------------------------------------ all

    def run(self) -> None:
        a = self.args
        self.cli_s = bl.median([bl.timed_cmd([a.hangarfs, '--help']) for _ in range(5)])
        self.details['cli_help_s'] = self.cli_s
        t, (_, self.pid) = bl.timed(
            lambda: self.mounts.mount(self.repo, self.mp, '--write', '--branch', 'master')
        )
        self.details['mount_s'] = t
        self.socket = json.loads((self.mp / '.hangarfs' / 'mount.json').read_text())['socket']
        try:
            for name, fn in (('cp', self.copy_files), ('big sample', self.big_sample)):
                if name in a.skip:
                    continue
                bl.log(f'--- {name}')
                t, _ = bl.timed(fn)
                self.details.setdefault('step_s', {})[name] = round(t, 1)
                self.report.sample_load()
        finally:
            self.mounts.umount(self.mp)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true', help='scaled down: 2,000 files, 128 MiB, 1 round')
    p.add_argument('--workdir', help='where the repository is built (default: a temp dir under /var/tmp)')
    p.add_argument('--keep', action='store_true', help='keep the default work directory')
    p.add_argument('--json', help='also write the JSON document here')
    p.add_argument('--files', type=int, default=10_000)
    p.add_argument('--base', type=int, default=1_000, help='samples committed before the mount')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--big-bytes', type=int, default=bl.GiB)
    p.add_argument('--big-rounds', type=int, default=3)
    p.add_argument('--skip', action='append', default=[], help="skip 'cp' or 'big sample'")
    p.add_argument('--anchor', default=str(bl.DEFAULT_ANCHOR))
    p.add_argument('--hangarfs', default=bl.DEFAULT_HANGARFS)
    args = p.parse_args()
    if args.quick:
        for k, v in {'files': 2_000, 'rounds': 1, 'big_bytes': 128 * bl.MiB, 'big_rounds': 1}.items():
            if getattr(args, k) == p.get_default(k):
                setattr(args, k, v)
    return args


def main() -> None:
    args = parse_args()
    bench = Bench(args)
    bench.details['args'] = vars(args)
    bl.run_bench(bench, args.json)


if __name__ == '__main__':
    main()
