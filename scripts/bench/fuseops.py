#!/usr/bin/env python
"""Which FUSE requests a hangarfs daemon answers while a command runs, and how long each takes.

    .venv/bin/python scripts/bench/fuseops.py MOUNTPOINT -- find MOUNTPOINT/images -printf '%s\\n'
    .venv/bin/python scripts/bench/fuseops.py --pid 1234 -- cp a.npy b.npy /mnt/stage/images/

A diagnostic for the mount benchmarks, not a benchmark: it attaches ``strace -f`` to the daemon (pid
from ``MOUNTPOINT/.hangarfs/mount.json`` or ``--pid``), runs the command, detaches, and decodes the
``/dev/fuse`` traffic: each request's opcode and size (from the ``fuse_in_header`` the daemon reads),
and the time from reading a request to writing its reply in the same thread (the daemon's time for
it, inflated by strace: compare operations with each other, not with timings taken without strace).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

OPCODES = {
    1: 'LOOKUP',
    2: 'FORGET',
    3: 'GETATTR',
    4: 'SETATTR',
    5: 'READLINK',
    8: 'MKNOD',
    9: 'MKDIR',
    10: 'UNLINK',
    11: 'RMDIR',
    12: 'RENAME',
    14: 'OPEN',
    15: 'READ',
    16: 'WRITE',
    17: 'STATFS',
    18: 'RELEASE',
    20: 'FSYNC',
    21: 'SETXATTR',
    22: 'GETXATTR',
    23: 'LISTXATTR',
    25: 'FLUSH',
    26: 'INIT',
    27: 'OPENDIR',
    28: 'READDIR',
    29: 'RELEASEDIR',
    30: 'FSYNCDIR',
    34: 'ACCESS',
    35: 'CREATE',
    36: 'INTERRUPT',
    39: 'IOCTL',
    40: 'POLL',
    42: 'BATCH_FORGET',
    43: 'FALLOCATE',
    44: 'READDIRPLUS',
    45: 'RENAME2',
    46: 'LSEEK',
    47: 'COPY_FILE_RANGE',
}
NO_REPLY = {'FORGET', 'BATCH_FORGET', 'INTERRUPT'}

LINE = re.compile(r'^(\d+)\s+(\d+\.\d+)\s+(read|writev)\((\d+), (.*)\)\s+=\s+(-?\d+)')
UNFINISHED = re.compile(r'^(\d+)\s+\d+\.\d+\s+(read|writev)\((\d+),.*<unfinished \.\.\.>')
RESUMED = re.compile(r'^(\d+)\s+(\d+\.\d+)\s+<\.\.\. (read|writev) resumed>(.*)\)\s+=\s+(-?\d+)')
HEX = re.compile(r'\\x([0-9a-f]{2})')


def _bytes(s: str) -> bytes:
    return bytes(int(h, 16) for h in HEX.findall(s))


def parse(text: str, fuse_fd: int) -> dict[str, Any]:
    pending: dict[int, tuple[str, float, int]] = {}  # unique -> (op, t, size)
    stats: dict[str, dict[str, float]] = collections.defaultdict(
        lambda: {'count': 0, 'bytes': 0, 'daemon_s': 0.0, 'reply_bytes': 0}
    )
    sizes: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    open_calls: dict[str, int] = {}  # thread -> fd of its unfinished call
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            fd, t, call, args, ret = (
                int(m.group(4)),
                float(m.group(2)),
                m.group(3),
                m.group(5),
                int(m.group(6)),
            )
        else:
            u = UNFINISHED.match(line)
            if u:
                open_calls[u.group(1)] = int(u.group(3))
                continue
            r = RESUMED.match(line)
            if not r or r.group(1) not in open_calls:
                continue
            fd = open_calls.pop(r.group(1))
            t, call, args, ret = float(r.group(2)), r.group(3), r.group(4), int(r.group(5))
        if fd != fuse_fd:
            continue
        if ret <= 0:
            continue
        raw = _bytes(args.split('"', 2)[1]) if '"' in args else b''
        if call == 'read' and len(raw) >= 40:
            length, opcode, unique = struct.unpack_from('<IIQ', raw, 0)
            op = OPCODES.get(opcode, f'op{opcode}')
            size = length - 40
            if op == 'READ' and len(raw) >= 40 + 20:
                size = struct.unpack_from('<I', raw, 40 + 16)[0]  # fuse_read_in.size
            elif op == 'WRITE':
                size = length - 40 - 40  # the data after fuse_write_in
            st = stats[op]
            st['count'] += 1
            st['bytes'] += max(size, 0)
            if op in ('READ', 'WRITE'):
                sizes[op][size] += 1
            if op not in NO_REPLY:
                pending[unique] = (op, t, size)
        elif call == 'writev' and len(raw) >= 16:
            _length, _error, unique = struct.unpack_from('<IiQ', raw, 0)
            got = pending.pop(unique, None)
            if got is not None:
                stats[got[0]]['daemon_s'] += t - got[1]
                stats[got[0]]['reply_bytes'] += ret - 16
    return {
        'ops': {k: dict(v) for k, v in sorted(stats.items(), key=lambda kv: -kv[1]['daemon_s'])},
        'sizes': {k: dict(v.most_common(8)) for k, v in sizes.items()},
    }


def fuse_fd_of(pid: int) -> int:
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            if os.readlink(f'/proc/{pid}/fd/{fd}') == '/dev/fuse':
                return int(fd)
        except OSError:
            continue
    raise SystemExit(f'process {pid} has no /dev/fuse open; is it a hangarfs daemon?')


def trace(pid: int, cmd: list[str]) -> tuple[dict[str, Any], float]:
    fd = fuse_fd_of(pid)
    with tempfile.NamedTemporaryFile('r', suffix='.strace') as out:
        strace = ['strace', '-f', '-ttt', '-xx', '-s', '64', '-e', 'trace=read,writev']
        tracer = subprocess.Popen(
            [*strace, '-p', str(pid), '-o', out.name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)  # attached to every thread
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
            elapsed = time.perf_counter() - t0
            time.sleep(0.3)
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=30)
        return parse(open(out.name).read(), fd), elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('mountpoint', nargs='?')
    p.add_argument('--pid', type=int)
    p.add_argument('--json', action='store_true', help='print JSON instead of a table')
    argv = sys.argv[1:]
    cut = argv.index('--') if '--' in argv else len(argv)
    a = p.parse_args(argv[:cut])
    cmd = argv[cut + 1 :]
    if not cmd or (a.pid is None and a.mountpoint is None):
        p.error('give MOUNTPOINT or --pid, then -- COMMAND')
    pid = a.pid
    if pid is None:
        with open(os.path.join(a.mountpoint, '.hangarfs', 'mount.json')) as fh:
            pid = int(json.load(fh)['pid'])
    result, elapsed = trace(pid, cmd)
    if a.json:
        print(json.dumps({**result, 'elapsed_s': elapsed}, indent=2))
        return
    print(f'{" ".join(cmd)}: {elapsed:.2f} s under strace')
    print(f'{"op":<16}{"count":>9}{"bytes":>14}{"daemon s":>10}{"µs each":>10}')
    for op, st in result['ops'].items():
        each = st['daemon_s'] / st['count'] * 1e6 if st['count'] else 0
        print(f'{op:<16}{st["count"]:>9,}{st["bytes"]:>14,}{st["daemon_s"]:>10.2f}{each:>10.0f}')
    for op, dist in result['sizes'].items():
        print(f'{op} sizes (most common): ' + ', '.join(f'{s:,} B x{n}' for s, n in dist.items()))


if __name__ == '__main__':
    sys.exit(main())
