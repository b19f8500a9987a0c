"""Running a mount as a daemon, finding this machine's mounts, and unmounting them.

The parent validates everything it can before forking (so bad input fails fast with one line), then
double-forks a daemon and waits until it reports over a pipe that the filesystem is mounted, or why
it is not. The daemon logs to a file under the repository store.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hangarfs.errors import HangarfsError

FSTYPE = 'fuse.hangarfs'
INFO_PATH = ('.hangarfs', 'mount.json')


class MountError(HangarfsError, OSError):
    """A mount or unmount that cannot be done; the message says why."""


def check_mountpoint(path: str) -> str:
    """The absolute mountpoint, or MountError if it is missing, not an empty directory, or in use."""
    mp = os.path.abspath(path)
    if mp in mounted_paths():
        raise MountError(f'{mp} is already a mountpoint; unmount it first (hangarfs umount {mp})')
    if not os.path.exists(mp):
        raise MountError(f'mountpoint {mp} does not exist; create it with mkdir -p {mp}')
    if not os.path.isdir(mp):
        raise MountError(f'mountpoint {mp} is not a directory')
    if os.path.ismount(mp):
        raise MountError(f'{mp} is already a mountpoint; unmount it first')
    if any(os.scandir(mp)):
        raise MountError(f'mountpoint {mp} is not empty; mount on an empty directory')
    return mp


def _unescape(field: str) -> str:
    return field.replace('\\040', ' ').replace('\\011', '\t').replace('\\012', '\n').replace('\\134', '\\')


def mounted_paths(fstype: str | None = FSTYPE) -> list[str]:
    """Mountpoints of this machine's FUSE mounts of type ``fstype`` (all FUSE mounts when None)."""
    out = []
    try:
        with open('/proc/self/mountinfo') as fh:
            for line in fh:
                left, _, right = line.partition(' - ')
                kind = right.split(' ', 1)[0]
                if (fstype is None and kind.startswith('fuse')) or kind == fstype:
                    out.append(_unescape(left.split(' ')[4]))
    except OSError:
        pass
    return out


def _read_with_timeout(path: str, timeout: float) -> bytes | None:
    """Read a file on a FUSE mount without hanging on a daemon that does not answer."""
    result: list[bytes] = []

    def read() -> None:
        try:
            with open(path, 'rb') as fh:
                result.append(fh.read())
        except OSError:
            pass

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    return result[0] if result else None


def mount_info(mountpoint: str, timeout: float = 2.0) -> dict[str, Any] | None:
    data = _read_with_timeout(os.path.join(mountpoint, *INFO_PATH), timeout)
    if data is None:
        return None
    try:
        info = json.loads(data)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def list_mounts() -> list[dict[str, Any]]:
    """This machine's hangarfs mounts with what each serves (a mount that does not answer says so)."""
    out = []
    for mp in mounted_paths():
        info = mount_info(mp) or {'status': 'not responding'}
        out.append({'mountpoint': mp, **info})
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def unmount(mountpoint: str, *, lazy: bool = False, timeout: float = 10.0) -> None:
    """Unmount and wait for the daemon to exit."""
    mp = os.path.abspath(mountpoint)
    if mp not in mounted_paths(None):
        raise MountError(f'{mp} is not a FUSE mount')
    info = mount_info(mp, timeout=1.0) or {}
    cmd = ['fusermount3', '-uz' if lazy else '-u', mp]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ['fusermount3 failed'])[-1]
        hint = '; close what uses it, or unmount lazily with --lazy' if 'busy' in reason else ''
        raise MountError(f'cannot unmount {mp}: {reason}{hint}')
    pid = info.get('pid')
    if isinstance(pid, int):
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


@dataclass(frozen=True)
class Started:
    pid: int
    log_path: str


ServeFn = Callable[[Callable[[], None], Path], None]


def _configure_logging(log_path: Path, also_stderr: bool) -> None:
    root = logging.getLogger('hangarfs')
    root.setLevel(logging.INFO)
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter('%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s'))
    root.addHandler(handler)
    if also_stderr:
        root.addHandler(logging.StreamHandler(sys.stderr))


def log_file(log_dir: Path) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    return log_dir / f'mount-{time.strftime("%Y%m%d-%H%M%S")}-{os.getpid()}.log'


def run_foreground(serve: ServeFn, log_dir: Path, on_ready: Callable[[str], None]) -> None:
    path = log_file(log_dir)
    _configure_logging(path, also_stderr=True)
    serve(lambda: on_ready(str(path)), path)


def start_daemon(serve: ServeFn, log_dir: Path, timeout: float = 60.0) -> Started:
    """Run ``serve(on_ready, log_path)`` in a daemon; return when it called ``on_ready`` (or raise)."""
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # first child: new session, then fork the daemon and leave
        code = 1
        try:
            os.close(r)
            os.setsid()
            if os.fork() > 0:
                code = 0
            else:
                code = _daemon_main(serve, log_dir, w)
        finally:
            os._exit(code)
    os.close(w)
    os.waitpid(pid, 0)
    message = b''
    deadline = time.monotonic() + timeout
    try:
        while not message.endswith(b'\n'):
            left = deadline - time.monotonic()
            if left <= 0:
                raise MountError(f'the mount daemon did not report within {timeout:.0f} s')
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                continue
            chunk = os.read(r, 4096)
            if not chunk:
                break
            message += chunk
    finally:
        os.close(r)
    text = message.decode(errors='replace').strip()
    if text.startswith('ok '):
        _, dpid, log_path = text.split(' ', 2)
        return Started(int(dpid), log_path)
    raise MountError(text.removeprefix('error ') or 'the mount daemon exited before mounting')


def _daemon_main(serve: ServeFn, log_dir: Path, w: int) -> int:
    path = log_file(log_dir)
    devnull = os.open(os.devnull, os.O_RDWR)
    logfd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(devnull, 0)
    os.dup2(logfd, 1)
    os.dup2(logfd, 2)
    os.close(devnull)
    os.close(logfd)
    sys.stdout = open(1, 'w', buffering=1, closefd=False)  # noqa: SIM115 (lives as long as the process)
    sys.stderr = open(2, 'w', buffering=1, closefd=False)  # noqa: SIM115
    _configure_logging(path, also_stderr=False)
    log = logging.getLogger('hangarfs.daemon')
    reported = False

    def on_ready() -> None:
        nonlocal reported
        os.write(w, f'ok {os.getpid()} {path}\n'.encode())
        os.close(w)
        reported = True

    try:
        serve(on_ready, path)
        log.info('daemon exiting')
        return 0
    except BaseException as err:
        log.exception('mount failed')
        if not reported:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            os.write(w, f'error mount failed: {reason} (log: {path})\n'.encode())
        return 1


# ------------------------------------------------------------------------------------- the adapters

ADAPTERS = ('lowlevel', 'mfusepy')
DEFAULT_ADAPTER = 'lowlevel'
ADAPTER_ENV = 'HANGARFS_FUSE_ADAPTER'


def adapter_name(requested: str | None = None) -> str:
    """The FUSE adapter to serve with: ``requested``, else $HANGARFS_FUSE_ADAPTER, else the default.

    ``lowlevel`` (``lowlevel.py``) speaks the kernel's protocol and lets the kernel cache listings,
    names and pages; ``mfusepy`` (``mount.py``) is the libfuse high-level adapter it replaced, kept for
    side-by-side benchmarks (BENCHMARKS.md).
    """
    name = requested or os.environ.get(ADAPTER_ENV) or DEFAULT_ADAPTER
    if name not in ADAPTERS:
        raise MountError(f'unknown FUSE adapter {name!r}: choose one of {", ".join(ADAPTERS)}')
    return name


def read_only_view(store: Any, commit: str | None, branch: str | None, label: str, adapter: str) -> Any:
    """The view a read-only mount serves: every ref (commit None), a branch, or one commit."""
    from hangarfs.fs import follow
    from hangarfs.fs.view import AllRefsView, BranchView, CommitView

    if commit is None and branch is None:
        return follow.FollowedRefs(store) if adapter == 'lowlevel' else AllRefsView(store)
    if branch:
        return follow.FollowedBranch(store, branch) if adapter == 'lowlevel' else BranchView(store, branch)
    return CommitView(store, commit or '', ref=label)


def serve_read_only(
    view: Any, mountpoint: str, on_ready: Callable[[], None], adapter: str, debug: bool = False
) -> None:
    """Serve a read-only view until unmounted (or signalled)."""
    if adapter == 'lowlevel':
        from hangarfs.fs.lowlevel import LowLevelFS

        LowLevelFS(view, mountpoint=mountpoint, on_ready=on_ready, debug=debug).serve()
        return
    from hangarfs.fs import mount as fuse_mount

    ops = fuse_mount.HangarfsOperations(view, mountpoint=mountpoint, on_ready=on_ready)
    fuse_mount.serve(ops, mountpoint, read_only=True, foreground_debug=debug)


def serve_staging(
    view: Any, staging: Any, mountpoint: str, on_ready: Callable[[], None], adapter: str, debug: bool = False
) -> None:
    """Serve the writable staging view until unmounted (or signalled)."""
    if adapter == 'lowlevel':
        from hangarfs.fs.lowlevel_staging import StagingFS

        StagingFS(view, staging, mountpoint=mountpoint, on_ready=on_ready, debug=debug).serve()
        return
    from hangarfs.fs import mount as fuse_mount
    from hangarfs.fs.mount_staging import StagingOperations

    ops = StagingOperations(view, staging, mountpoint=mountpoint, on_ready=on_ready)
    fuse_mount.serve(ops, mountpoint, read_only=False, foreground_debug=debug)
