"""What the benchmarks share (``engine.py``, ``history.py``, ``mount.py``, ``mount_write.py``); not a
benchmark itself. A benchmark run as ``python scripts/bench/NAME.py`` has this directory first on
``sys.path``, so it imports this module as ``import benchlib as bl``, without path manipulation.

- the Hangar anchor: :func:`anchor_functions` executes the data-making functions of
  ``hangar_anchor.py`` without importing hangar; :func:`import_anchor` imports the whole module by its
  path (in Hangar's interpreter); ``DEFAULT_ANCHOR``, ``DEFAULT_HANGAR_PYTHON``;
- :func:`timed`, :func:`run`, :func:`median`, :func:`log`, :func:`git_commit`;

- :class:`Mounts` runs ``hangarfs mount`` (timed, from the command's start until it returns, which it
  does once the daemon has answered FUSE's INIT), remembers every mountpoint, and unmounts them all on
  exit (``fusermount3 -u``, then ``-uz``; then waits for the daemon, SIGTERM after 10 s), also on
  SIGTERM/SIGINT and on errors;
- :func:`drop_caches` (``sync; echo 3 > /proc/sys/vm/drop_caches``, root only) for cold figures;
- :func:`daemon_rss` and :func:`proc_io` read a daemon's ``/proc/PID/status`` and ``/proc/PID/io``;
- :class:`Report` collects figures with the native filesystem beside them, prints the table, a marker
  line and one JSON document, and writes ``--json``.

Ratios are always "hangarfs speed / native speed": a rate over the native rate, or the native time over
the hangarfs time, so 0.5x means half as fast as the native filesystem whichever way the figure reads.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import datetime
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ANCHOR_IN_SHARED = Path('shared', 'bench', 'hangar_anchor.py')
# beside the repository (../shared), or beside a directory above it (a worktree in /work/wt/NAME)
DEFAULT_ANCHOR = next(
    (p / ANCHOR_IN_SHARED for p in ROOT.parents if (p / ANCHOR_IN_SHARED).is_file()),
    ROOT.parent / ANCHOR_IN_SHARED,
)
DEFAULT_HANGAR_PYTHON = '/tmp/hangar-venv/bin/python'
DEFAULT_HANGARFS = str(Path(sys.executable).with_name('hangarfs'))
SHM = Path('/dev/shm')
GB = 1e9
MB = 1e6
MiB = 1 << 20
GiB = 1 << 30


# ============================================================================ small things


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run(cmd: Sequence[str], *, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    kw.setdefault('capture_output', True)
    proc = subprocess.run(list(cmd), text=True, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f'{" ".join(map(str, cmd))} failed ({proc.returncode}): {proc.stderr}{proc.stdout}'
        )
    return proc


def timed_cmd(cmd: Sequence[str], **kw: Any) -> float:
    """Wall time of a command, its output thrown away (it must succeed)."""
    t0 = time.perf_counter()
    proc = subprocess.run(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)
    t = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(map(str, cmd))} failed ({proc.returncode}): {proc.stderr}')
    return t


def median(xs: Sequence[float]) -> float:
    return float(np.median(np.asarray(xs, dtype=float)))


def log(msg: str) -> None:
    print(f'[{time.strftime("%H:%M:%S")}] {msg}', file=sys.stderr, flush=True)


def can_drop_caches() -> bool:
    return os.geteuid() == 0 and os.access('/proc/sys/vm/drop_caches', os.W_OK)


def drop_caches() -> bool:
    """``sync; echo 3 > /proc/sys/vm/drop_caches``; False (and nothing done) without root."""
    if not can_drop_caches():
        return False
    os.sync()
    with open('/proc/sys/vm/drop_caches', 'w') as fh:
        fh.write('3\n')
    return True


def daemon_rss(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    out = {}
    with open(f'/proc/{pid}/status') as fh:
        for line in fh:
            name, _, rest = line.partition(':')
            if name in ('VmRSS', 'VmHWM'):
                out[name] = int(rest.split()[0]) * 1024
    return out


def proc_io(pid: int) -> dict[str, int]:
    """``/proc/PID/io`` of a process (all its threads): rchar, read_bytes, syscr, ..."""
    with open(f'/proc/{pid}/io') as fh:
        return {k: int(v) for k, v in (line.split(':') for line in fh)}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f'/proc/{pid}/stat') as fh:
            return fh.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def is_mounted(path: str | Path) -> bool:
    target = str(path)
    with open('/proc/self/mountinfo') as fh:
        return any(line.split(' ')[4] == target for line in fh)


def all_mountpoints() -> list[str]:
    with open('/proc/self/mountinfo') as fh:
        return [line.split(' ')[4] for line in fh]


def hangarfs_mounts() -> list[str]:
    with open('/proc/mounts') as fh:
        return [line.split(' ')[1] for line in fh if ' fuse.hangarfs ' in line]


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob('*') if p.is_file())


# ============================================================================ data


def run_bench(bench: Any, json_path: str | None) -> None:
    """Set up, run and report a mount benchmark; its mounts and scratch files go whatever happens."""
    try:
        bench.setup()
        bench.run()
        bench.report.emit(json_path)
    finally:
        bench.mounts.cleanup()
        bench.scratch.cleanup()
    left = hangarfs_mounts()
    if left:
        log(f'hangarfs mounts still present: {left}')


def anchor_functions(anchor: Path, extra: Sequence[str] = ()) -> SimpleNamespace:
    """``make_data``, ``SEED``, ``CHUNK`` (and ``extra`` names) of the Hangar anchor, executed here.

    Importing the anchor imports ``hangar``, which only Hangar's interpreter has, so only the wanted
    top-level definitions are taken from its syntax tree and executed (with ``np`` and ``os``)."""
    wanted = {'make_data', 'SEED', 'CHUNK', *extra}
    tree = ast.parse(anchor.read_text(), str(anchor))
    body = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name in wanted)
        or (isinstance(node, ast.Assign) and any(getattr(t, 'id', None) in wanted for t in node.targets))
    ]
    namespace: dict[str, Any] = {'np': np, 'os': os}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(anchor), 'exec'), namespace)
    missing = wanted - set(namespace)
    if missing:
        raise SystemExit(f'{anchor} no longer defines {sorted(missing)}; update the benchmarks')
    return SimpleNamespace(**{k: namespace[k] for k in wanted})


def import_anchor(anchor: Path) -> ModuleType:
    """Import ``hangar_anchor.py`` from its path as the module ``hangar_anchor`` (needs ``hangar``).

    Its import also applies its numpy-compatibility shims for Hangar."""
    spec = importlib.util.spec_from_file_location('hangar_anchor', anchor)
    if spec is None or spec.loader is None:
        raise SystemExit(f'cannot import the Hangar anchor {anchor}')
    module = importlib.util.module_from_spec(spec)
    sys.modules['hangar_anchor'] = module
    spec.loader.exec_module(module)
    return module


def git_commit() -> str:
    """The full commit id checked out in this repository ('' if git cannot tell)."""
    try:
        return run(['git', '-C', str(ROOT), 'rev-parse', 'HEAD'], check=False).stdout.strip()
    except OSError:
        return ''


def npy_header(dtype: Any, shape: tuple[int, ...]) -> bytes:
    """The header ``numpy.save`` writes for a C-ordered array of this dtype and shape."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {'descr': np.lib.format.dtype_to_descr(np.dtype(dtype)), 'fortran_order': False, 'shape': shape}
    )
    return buf.getvalue()


def write_npy_files(directory: Path, keys: Sequence[int], rows: np.ndarray) -> None:
    """One ``KEY.npy`` per row, byte-identical to ``numpy.save(row)``."""
    directory.mkdir(parents=True, exist_ok=True)
    header = npy_header(rows.dtype, rows.shape[1:])
    for k, row in zip(keys, rows):
        with open(directory / f'{k}.npy', 'wb') as fh:
            fh.write(header + row.tobytes())


def smooth_volume(shape: tuple[int, ...], seed: int = 4) -> np.ndarray:
    """float32, a random walk (cumsum of small noise): smooth, so it compresses somewhat."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    out = rng.standard_normal(n, dtype=np.float32)
    out *= np.float32(0.01)
    np.cumsum(out, out=out)
    return out.reshape(shape)


def read_whole(path: str | Path, bufsize: int = MiB) -> tuple[float, int]:
    """(seconds, bytes) of reading a file front to back with ``bufsize`` reads (open included)."""
    buf = bytearray(bufsize)
    total = 0
    t0 = time.perf_counter()
    with open(path, 'rb', buffering=0) as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            total += n
    return time.perf_counter() - t0, total


def write_whole(path: str | Path, data: memoryview, bufsize: int = MiB) -> float:
    """Seconds from ``open`` to ``close`` returning, writing ``data`` in ``bufsize`` pieces."""
    t0 = time.perf_counter()
    with open(path, 'wb', buffering=0) as fh:
        for i in range(0, len(data), bufsize):
            fh.write(data[i : i + bufsize])
    return time.perf_counter() - t0


# ============================================================================ mounts


class Mounts:
    """Mounts made through the ``hangarfs`` command; all unmounted at exit, whatever happens."""

    def __init__(self, hangarfs: str) -> None:
        self.hangarfs = hangarfs
        self.active: dict[str, int | None] = {}
        atexit.register(self.cleanup)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    @staticmethod
    def _on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds through every finally, then atexit

    def mount(self, repo: Path, mp: Path, *args: str) -> tuple[float, int]:
        """Mount; (seconds from the command's start until it returned, daemon pid)."""
        mp.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [self.hangarfs, 'mount', str(repo), str(mp), *args], capture_output=True, text=True
        )
        t = time.perf_counter() - t0
        if proc.returncode != 0:
            if is_mounted(mp):
                self.active[str(mp)] = None
            raise RuntimeError(
                f'hangarfs mount {repo} {mp} {" ".join(args)} failed: {proc.stderr}{proc.stdout}'
            )
        m = re.search(r'\(pid (\d+)', proc.stdout)
        pid = int(m.group(1)) if m else None
        self.active[str(mp)] = pid
        if pid is None:  # fall back on what the mount says about itself
            with open(mp / '.hangarfs' / 'mount.json') as fh:
                pid = int(json.load(fh)['pid'])
            self.active[str(mp)] = pid
        return t, pid

    def umount(self, mp: Path | str) -> None:
        mp = str(mp)
        pid = self.active.pop(mp, None)
        if is_mounted(mp):
            proc = subprocess.run(['fusermount3', '-u', mp], capture_output=True, text=True)
            if proc.returncode != 0 and is_mounted(mp):
                log(f'fusermount3 -u {mp}: {proc.stderr.strip()}; unmounting lazily')
                subprocess.run(['fusermount3', '-uz', mp], capture_output=True, text=True)
        if pid is not None:
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if pid_alive(pid):  # our own daemon, by its pid
                log(f'daemon {pid} of {mp} still alive 10 s after unmounting; SIGTERM')
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    @contextlib.contextmanager
    def mounted(self, repo: Path, mp: Path, *args: str) -> Iterator[tuple[float, int]]:
        try:
            yield self.mount(repo, mp, *args)
        finally:
            self.umount(mp)

    def cleanup(self) -> None:
        for mp in list(self.active):
            try:
                self.umount(mp)
            except Exception as err:  # keep going: every mount must go
                log(f'cleanup of {mp} failed: {err}')


class Scratch:
    """Temporary directories (tmpfs and disk) removed at exit."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        atexit.register(self.cleanup)

    def make(self, parent: Path, prefix: str) -> Path:
        parent.mkdir(parents=True, exist_ok=True)
        p = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        self.paths.append(p)
        return p

    def add(self, path: Path) -> Path:
        self.paths.append(path)
        return path

    def cleanup(self) -> None:
        while self.paths:
            p = self.paths.pop()
            inside = [m for m in all_mountpoints() if m == str(p) or m.startswith(str(p) + '/')]
            if inside:  # never remove through a mount (a staging mount would lose samples)
                log(f'not removing {p}: mounts inside it: {inside}')
                continue
            if p.exists():
                shutil.rmtree(p, ignore_errors=True)


def workdir_setup(workdir: str | None, keep: bool, scratch: Scratch, prefix: str) -> Path:
    """The work directory, where repositories are built and cached.

    A ``workdir`` given is the user's: kept, with its repositories, for the next run to reuse. The
    default is a new directory under /var/tmp (the local disk), removed at exit unless ``keep``.
    """
    if workdir:
        path = Path(workdir).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    path = Path(tempfile.mkdtemp(prefix=prefix, dir='/var/tmp'))
    if keep:
        log(f'work directory {path} will be kept (reuse it with --workdir {path})')
    else:
        scratch.add(path)
    return path


# ============================================================================ machine


def machine_info() -> dict[str, Any]:
    cpu = ''
    with contextlib.suppress(OSError), open('/proc/cpuinfo') as fh:
        for line in fh:
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError), open('/proc/meminfo') as fh:
        for line in fh:
            if line.startswith('MemTotal'):
                mem = int(line.split()[1]) * 1024
    git = run(['git', '-C', str(ROOT), 'rev-parse', '--short', 'HEAD'], check=False).stdout.strip()
    dirty = bool(run(['git', '-C', str(ROOT), 'status', '--porcelain'], check=False).stdout.strip())
    diff = run(['git', '-C', str(ROOT), 'diff', 'HEAD'], check=False).stdout
    import hashlib

    diff_sha1 = hashlib.sha1(diff.encode()).hexdigest()[:12] if diff else ''
    versions = {}
    for mod in ('numpy', 'h5py', 'blosc', 'mfusepy'):
        with contextlib.suppress(Exception):
            versions[mod] = __import__(mod).__version__
    fuse3 = run(['fusermount3', '--version'], check=False).stdout.strip()
    return {
        'cores': os.cpu_count(),
        'cpu': cpu,
        'mem_gb': round(mem / GB, 1),
        'kernel': platform.release(),
        'python': platform.python_version(),
        'git': git + (' + uncommitted changes' if dirty else ''),
        'git_diff_sha1': diff_sha1,
        'versions': versions,
        'fusermount3': fuse3,
        'root': os.geteuid() == 0,
    }


def busy_processes(threshold: float = 20.0) -> list[str]:
    """Processes that used more than ``threshold`` % CPU over their lifetime (``ps``), to note the noise.

    Our own mount daemons are among them while they run."""
    proc = run(['ps', '-eo', 'pid,pcpu,etime,args', '--sort=-pcpu', '--no-headers'], check=False)
    out = []
    me = os.getpid()
    for line in proc.stdout.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4:
            continue
        pid, pcpu = int(parts[0]), float(parts[1])
        if pcpu < threshold:
            break
        if pid != me and not parts[3].startswith('ps -eo') and '<defunct>' not in parts[3]:
            out.append(f'{pid} {pcpu:.0f}% {parts[3][:100]}')
    return out


def load_sample() -> dict[str, Any]:
    return {'time': time.strftime('%H:%M:%S'), 'loadavg': os.getloadavg()[0], 'busy': busy_processes()}


# ============================================================================ the report


@dataclass
class Figure:
    key: str
    label: str
    unit: str  # 's', '/s', 'GB/s', 'MB/s', 'MB', 'MiB', 'IOPS', 'x'
    hangarfs: float | None
    native: float | None = None  # tmpfs unless the label says otherwise
    disk: float | None = None  # the same files on the local disk (ext4)
    higher_is_better: bool = True
    target: str = ''
    passed: bool | None = None
    note: str = ''
    ratio: float | None = field(default=None)
    other: float | None = None  # the same figure through the other FUSE adapter (mfusepy), same run

    def __post_init__(self) -> None:
        if self.ratio is None and self.hangarfs and self.native:
            self.ratio = self.hangarfs / self.native if self.higher_is_better else self.native / self.hangarfs


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return '–'
    if unit == 's':
        return f'{value * 1000:,.1f} ms' if value < 1 else f'{value:,.2f} s'
    if unit in ('/s', 'IOPS'):
        return f'{value:,.0f}{"/s" if unit == "/s" else " IOPS"}'
    if unit in ('GB/s', 'MB/s'):
        return f'{value:,.2f} {unit}' if value < 100 else f'{value:,.0f} {unit}'
    if unit in ('MB', 'MiB', 'KiB'):
        return f'{value:,.1f} {unit}'
    if unit == 'x':
        return f'{value:,.2f}x'
    return f'{value:,.3g} {unit}'


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return '–'
    return f'{r:.3f}x' if r < 0.1 else f'{r:.2f}x'


class Report:
    def __init__(self, name: str, marker: str, argv: Sequence[str]) -> None:
        self.name = name
        self.marker = marker
        self.figures: list[Figure] = []
        self.details: dict[str, Any] = {}
        self.started = time.time()
        self.t0 = time.perf_counter()
        self.meta: dict[str, Any] = {
            'benchmark': name,
            'command': ' '.join(argv),
            'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
            'machine': machine_info(),
            'load': [load_sample()],
        }

    def add(self, fig: Figure) -> Figure:
        self.figures.append(fig)
        verdict = '' if fig.passed is None else ('PASS' if fig.passed else 'MISS')
        log(
            f'{fig.label}: {fmt(fig.hangarfs, fig.unit)} | native {fmt(fig.native, fig.unit)}'
            f' | {fmt_ratio(fig.ratio)} | {fig.target} {verdict}'
        )
        return fig

    def sample_load(self) -> None:
        self.meta['load'].append(load_sample())

    def table(self) -> str:
        head = ['figure', 'hangarfs', 'native (tmpfs)', 'ratio', 'local disk', 'target', '']
        rows = [
            [
                f.label,
                fmt(f.hangarfs, f.unit),
                fmt(f.native, f.unit),
                fmt_ratio(f.ratio),
                fmt(f.disk, f.unit),
                f.target or '–',
                '' if f.passed is None else ('PASS' if f.passed else 'MISS'),
            ]
            for f in self.figures
        ]
        right = {1, 2, 3, 4}
        if any(f.other is not None for f in self.figures):  # a second adapter measured beside it
            head[1:2] = ['hangarfs', 'mfusepy adapter', 'vs mfusepy']
            for f, row in zip(self.figures, rows):
                speedup = None
                if f.other and f.hangarfs:
                    speedup = f.hangarfs / f.other if f.higher_is_better else f.other / f.hangarfs
                row[2:2] = [fmt(f.other, f.unit), fmt_ratio(speedup)]
            right = {1, 2, 3, 4, 5, 6}
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

        def line(cells: list[str]) -> str:
            return (
                '| '
                + ' | '.join(
                    c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
                )
                + ' |'
            )

        sep = (
            '|'
            + '|'.join(('-' * (w + 1) + ':') if i in right else '-' * (w + 2) for i, w in enumerate(widths))
            + '|'
        )
        notes = [f'- {f.label}: {f.note}' for f in self.figures if f.note]
        return '\n'.join([line(head), sep, *(line(r) for r in rows)] + (['', *notes] if notes else []))

    def document(self) -> dict[str, Any]:
        self.sample_load()
        return {
            **self.meta,
            'runtime_s': round(time.perf_counter() - self.t0, 1),
            'figures': [asdict(f) for f in self.figures],
            'details': self.details,
        }

    def emit(self, json_path: str | None) -> None:
        doc = self.document()
        print()
        print(f'{self.name}: {doc["date"]}, runtime {doc["runtime_s"]:.0f} s')
        print(self.table())
        print()
        print(self.marker)
        print(json.dumps(doc, default=str))
        sys.stdout.flush()
        if json_path:
            Path(json_path).write_text(json.dumps(doc, indent=2, default=str) + '\n')
