#!/usr/bin/env python
"""Per-request cost of three ways to serve FUSE from Python, on one trivial in-memory filesystem.

    .venv/bin/python scripts/bench/fusebindings.py                 # 20k files, 3 rounds, ~2 min
    .venv/bin/python scripts/bench/fusebindings.py --files 5000 --rounds 1

The filesystem is a ``MountSource`` with one directory of ``--files`` files of 912 bytes (an MNIST
``.npy``), all in memory, so the figures are the adapters' own costs, not the repository's. It is served
(one daemon process each, one request thread each, as the mounts run) by:

- ``lowlevel``: hangarfs's adapter, the kernel's protocol spoken directly (``hangarfs/fs/lowlevel.py``);
- ``mfusepy``: hangarfs's former adapter, libfuse 3's high-level API via ctypes (``fs/mount.py``);
- ``pyfuse3``: libfuse 3's low-level API through pyfuse3 (Cython, trio), when it is installed
  (``pip install pyfuse3``; it builds against ``libfuse3-dev``), with the same caching choices where
  pyfuse3 allows them (long timeouts, ``keep_cache``; its OPENDIR reply cannot ask for cached listings).

What it times, per round and binding: on a fresh mount, ``stat`` of every file by name with nothing
listed (one LOOKUP each: the round trip), ``cat``-like reads of every file (``os.open``/``os.read``:
the names are cached by then, so this is the OPEN and READ round trips, or the READ alone when opens
are not sent), and Python ``open().read()`` of every file again (warm: the page cache, plus whatever
``open()`` asks; Python asks ``isatty``, an IOCTL); on another fresh mount, ``ls -f`` of the
directory twice (the second shows whether the kernel cached the listing). Rounds alternate the
bindings; medians are printed with ratios to ``lowlevel``, then a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hangarfs.fs.source import Names, Nodes
from hangarfs.fs.view import DIR, FILE, MountSource, Node

DATA = b'\x93NUMPY\x01\x00v\x00' + b' ' * 118 + bytes(784)  # 912 bytes, shaped like an MNIST .npy


class MemorySource(MountSource):
    """``/d/0.npy`` ... ``/d/{n-1}.npy``, identical 912-byte files, immutable."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.names = [f'{i}.npy' for i in range(n)]
        self.file = Node(FILE, len(DATA), 1_700_000_000_000_000_000, b'd' * 16, content=DATA)
        self.dir = Node(DIR, 0, 1_700_000_000_000_000_000, b'x', entries=n)

    def lookup(self, path: str) -> Node | None:
        if path in ('/', '/d'):
            return self.dir
        if path.startswith('/d/') and path.endswith('.npy'):
            stem = path[3:-4]
            if stem.isdigit() and int(stem) < self.n:
                return self.file
        return None

    def list_names(self, path: str) -> Names | None:
        if path == '/':
            return iter([('d', True)])
        if path == '/d':
            return ((name, False) for name in self.names)
        return None

    def list_nodes(self, path: str) -> Nodes | None:
        if path == '/':
            return iter([('d', self.dir)])
        if path == '/d':
            return ((name, self.file) for name in self.names)
        return None

    def is_immutable(self) -> bool:
        return True

    def uniform_file_size(self, path: str) -> int | None:
        return len(DATA) if path == '/d' else None


# ------------------------------------------------------------------------------------------ servers


def serve_lowlevel(n: int, mp: str) -> None:
    from hangarfs.fs.lowlevel import LowLevelFS

    LowLevelFS(MemorySource(n), mountpoint=mp).serve()


def serve_mfusepy(n: int, mp: str) -> None:
    from hangarfs.fs import mount

    mount.serve(mount.HangarfsOperations(MemorySource(n), mountpoint=mp), mp)


def serve_pyfuse3(n: int, mp: str) -> None:
    import errno
    import stat as st

    import pyfuse3
    import trio

    source = MemorySource(n)
    forever = 365 * 24 * 3600.0

    class Ops(pyfuse3.Operations):
        def _attr(self, ino: int, node: Node) -> Any:
            a = pyfuse3.EntryAttributes()
            a.st_ino = ino
            a.st_mode = (st.S_IFDIR | 0o555) if node.is_dir else (st.S_IFREG | 0o444)
            a.st_nlink = 2 if node.is_dir else 1
            a.st_size = node.size
            a.st_mtime_ns = a.st_ctime_ns = a.st_atime_ns = node.mtime_ns
            a.entry_timeout = a.attr_timeout = forever
            return a

        def _path(self, ino: int) -> str:
            return '/' if ino == pyfuse3.ROOT_INODE else '/d' if ino == 2 else f'/d/{ino - 3}.npy'

        async def lookup(self, parent: int, name: bytes, ctx: Any = None) -> Any:
            path = ('/' if parent == pyfuse3.ROOT_INODE else '/d/') + name.decode()
            node = source.lookup(path)
            if node is None:
                raise pyfuse3.FUSEError(errno.ENOENT)
            return self._attr(2 if node.is_dir else 3 + int(name[:-4]), node)

        async def getattr(self, ino: int, ctx: Any = None) -> Any:
            node = source.lookup(self._path(ino))
            if node is None:
                raise pyfuse3.FUSEError(errno.ENOENT)
            return self._attr(ino, node)

        async def opendir(self, ino: int, ctx: Any) -> int:
            return ino

        async def readdir(self, fh: int, start: int, token: Any) -> None:
            if fh == pyfuse3.ROOT_INODE:
                if start == 0:
                    pyfuse3.readdir_reply(token, b'd', self._attr(2, source.dir), 1)
                return
            attr = self._attr(3, source.file)
            for i in range(start, n):
                attr.st_ino = 3 + i
                if not pyfuse3.readdir_reply(token, source.names[i].encode(), attr, i + 1):
                    return

        async def open(self, ino: int, flags: int, ctx: Any) -> Any:
            return pyfuse3.FileInfo(fh=ino, keep_cache=True)

        async def read(self, fh: int, off: int, size: int) -> bytes:
            return DATA[off : off + size]

        async def release(self, fh: int) -> None:
            pass

        async def forget(self, inode_list: Any) -> None:
            pass

    options = set(pyfuse3.default_options)
    options |= {'fsname=bench', 'ro'}
    pyfuse3.init(Ops(), mp, options)
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close()


SERVERS = {'lowlevel': serve_lowlevel, 'mfusepy': serve_mfusepy, 'pyfuse3': serve_pyfuse3}


# ------------------------------------------------------------------------------------------ measuring


def mounted(mp: str) -> bool:
    with open('/proc/self/mountinfo') as fh:
        return any(line.split(' ')[4] == mp for line in fh)


def rate(fn: Any, items: list[str]) -> float:
    t0 = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - t0)


def raw_read(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    os.read(fd, 4096)
    os.close(fd)


def py_read(path: str) -> None:
    with open(path, 'rb') as fh:
        fh.read()


def serving(binding: str, n: int, mp: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, __file__, '--serve', binding, '--files', str(n), mp])
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(mp, 'd')):
        if time.monotonic() > deadline or proc.poll() is not None:
            stop(proc, mp)
            raise RuntimeError(f'{binding} did not mount')
        time.sleep(0.02)
    return proc


def stop(proc: subprocess.Popen[bytes], mp: str) -> None:
    subprocess.run(['fusermount3', '-u', mp], capture_output=True)
    if mounted(mp):
        subprocess.run(['fusermount3', '-uz', mp], capture_output=True)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def one_round(binding: str, n: int, mp: str) -> dict[str, float]:
    out: dict[str, float] = {}
    paths = [f'{mp}/d/{i}.npy' for i in range(n)]
    proc = serving(binding, n, mp)  # a fresh mount: names looked up one by one, then files read
    try:
        out['lookup'] = rate(os.stat, paths)
        out['read_cold'] = rate(raw_read, paths)
        out['open_read_warm'] = rate(py_read, paths)
    finally:
        stop(proc, mp)
    proc = serving(binding, n, mp)  # another: the directory listed, twice
    try:
        for key in ('ls_first', 'ls_second'):
            t0 = time.perf_counter()
            listed = subprocess.run(['ls', '-f', f'{mp}/d'], capture_output=True, check=True).stdout.count(
                b'\n'
            )
            out[key] = n / (time.perf_counter() - t0)
            assert listed in (n, n + 2), (binding, listed)  # pyfuse3 lists no dots
    finally:
        stop(proc, mp)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--files', type=int, default=20_000)
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--serve', help=argparse.SUPPRESS)
    p.add_argument('mountpoint', nargs='?', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        SERVERS[a.serve](a.files, a.mountpoint)
        return
    bindings = ['lowlevel', 'mfusepy']
    try:
        import pyfuse3  # noqa: F401

        bindings.append('pyfuse3')
    except ImportError:
        print('pyfuse3 is not installed: measuring lowlevel and mfusepy only', file=sys.stderr)
    results: dict[str, dict[str, list[float]]] = {b: {} for b in bindings}
    with tempfile.TemporaryDirectory(prefix='fusebindings-') as tmp:
        mp = os.path.join(tmp, 'mp')
        os.mkdir(mp)
        for r in range(a.rounds):
            order = bindings if r % 2 == 0 else bindings[::-1]
            for b in order:
                for key, value in one_round(b, a.files, mp).items():
                    results[b].setdefault(key, []).append(value)
    med = {b: {k: statistics.median(v) for k, v in r.items()} for b, r in results.items()}
    keys = list(med['lowlevel'])
    print(
        f'{a.files:,} files of {len(DATA)} bytes, median of {a.rounds} rounds (per second; ratio to lowlevel)'
    )
    print('| binding | ' + ' | '.join(keys) + ' |')
    print('|---|' + '---:|' * len(keys))
    for b in bindings:
        cells = [
            f'{med[b][k]:,.0f}' + ('' if b == 'lowlevel' else f' ({med[b][k] / med["lowlevel"][k]:.2f}x)')
            for k in keys
        ]
        print(f'| {b} | ' + ' | '.join(cells) + ' |')
    print(json.dumps({'files': a.files, 'rounds': a.rounds, 'results': results, 'load': os.getloadavg()}))


if __name__ == '__main__':
    main()
