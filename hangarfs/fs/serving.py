"""What a mount's daemon runs: open the repository, build the view, serve it over FUSE.

The CLI validates its arguments and forks the daemon (``daemon.py``); the functions here build the
``serve(on_ready, log_path)`` callable the daemon calls: a read-only mount (a commit, a branch or every
ref) or a staging mount (the writer, its view and its control socket), through the FUSE adapter
chosen (``lowlevel.py`` by default, ``mount.py`` for comparison).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hangarfs.engine.refs import ResolvedRef
from hangarfs.errors import HangarfsError

Serve = Callable[[Callable[[], None], Path], None]
log = logging.getLogger('hangarfs.daemon')


def mount_info(repo: str, log_path: Path, mode: str, **extra: Any) -> dict[str, Any]:
    """What ``.hangarfs/mount.json`` says about the daemon serving a mount."""
    return {
        'pid': os.getpid(),
        'repo': repo,
        'mode': mode,
        'log': str(log_path),
        'started': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        **extra,
    }


ADAPTERS = ('lowlevel', 'mfusepy')
DEFAULT_ADAPTER = 'lowlevel'
ADAPTER_ENV = 'HANGARFS_FUSE_ADAPTER'


def adapter_name(requested: str | None = None, *, lazy: bool = False) -> str:
    """The FUSE adapter to serve with: ``requested``, else $HANGARFS_FUSE_ADAPTER, else the default.

    A lazy mount defaults to ``mfusepy``: its cache must never evict what an open file reads, so it
    needs every open and release, and the low-level adapter answers OPEN in the kernel's no-open mode.

    ``lowlevel`` (``lowlevel.py``) speaks the kernel's protocol and lets the kernel cache listings,
    names and pages; ``mfusepy`` (``mount.py``) is the libfuse high-level adapter it replaced, kept for
    side-by-side benchmarks (BENCHMARKS.md).
    """
    from hangarfs.fs.daemon import MountError

    name = requested or ('mfusepy' if lazy else os.environ.get(ADAPTER_ENV) or DEFAULT_ADAPTER)
    if name not in ADAPTERS:
        raise MountError(
            f'unknown FUSE adapter {name!r} (from --adapter or ${ADAPTER_ENV}): '
            f'choose one of {", ".join(ADAPTERS)}'
        )
    return name


def read_only_view(store: Any, resolved: ResolvedRef | None, label: str, adapter: str) -> Any:
    """The view a read-only mount serves: every ref (``resolved`` None), a branch, or one commit.

    The low-level adapter follows branches by invalidation (``follow.py``): its views move only when
    it asks; the mfusepy adapter's move by themselves (``composed.py``)."""
    from hangarfs.fs import follow
    from hangarfs.fs.view import AllRefsView, BranchView, CommitView

    if resolved is None:
        return follow.FollowedRefs(store) if adapter == 'lowlevel' else AllRefsView(store)
    if resolved.branch:
        branch = resolved.branch
        return follow.FollowedBranch(store, branch) if adapter == 'lowlevel' else BranchView(store, branch)
    return CommitView(store, resolved.commit, ref=label)


@dataclass(frozen=True)
class LazyOptions:
    """A lazy mount's cache: where, and how many bytes at most."""

    cache_size: int
    cache_dir: str | None = None


def read_only_server(
    repo: str,
    mountpoint: str,
    resolved: ResolvedRef | None,
    label: str,
    adapter: str,
    debug: bool,
    lazy: LazyOptions | None = None,
) -> Serve:
    """A read-only mount: of every ref when ``resolved`` is None, else of a branch or a commit.
    With ``lazy``, samples only a remote holds are fetched when read (``hangarfs.engine.remote.lazy``)."""

    def serve(on_ready: Callable[[], None], log_path: Path) -> None:
        from hangarfs.engine.store import RepoStore
        from hangarfs.fs.usage import RepositoryUsage
        from hangarfs.fs.view import InfoView

        store = RepoStore(repo)
        reader = None
        if lazy is not None:
            from hangarfs.engine.remote.lazy import attach_lazy_reader

            reader = attach_lazy_reader(store, cache_dir=lazy.cache_dir, cache_size=lazy.cache_size)
        view = read_only_view(store, resolved, label, adapter)
        if reader is not None:
            from hangarfs.fs.lazy_view import LazyView

            view = LazyView(view, reader)
        info = mount_info(repo, log_path, 'lazy' if lazy is not None else 'read-only', adapter=adapter)
        source = InfoView(view, info, usage=RepositoryUsage(store.dir))
        try:
            if adapter == 'lowlevel':
                from hangarfs.fs.lowlevel import LowLevelFS

                LowLevelFS(source, mountpoint=mountpoint, on_ready=on_ready, debug=debug).serve()
                return
            from hangarfs.fs import mount as fuse_mount

            ops = fuse_mount.HangarfsOperations(source, mountpoint=mountpoint, on_ready=on_ready)
            serve_until_unmounted(
                lambda: fuse_mount.serve(ops, mountpoint, read_only=True, foreground_debug=debug), mountpoint
            )
        finally:
            if reader is not None:
                log.info('lazy reads: %s', reader.stats())
                reader.close()

    return serve


def staging_server(
    repo: str, mountpoint: str, branch: str, store_dir: Path, adapter: str, debug: bool
) -> Serve:
    """A staging mount: hold the writer of ``branch``, serve its view and the control socket."""

    def serve(on_ready: Callable[[], None], log_path: Path) -> None:
        from hangarfs.engine.attr_table import AttrTable
        from hangarfs.engine.store import RepoStore
        from hangarfs.engine.writer_checkout import WriterCheckout
        from hangarfs.fs import control
        from hangarfs.fs.view import InfoView, StagingView

        store = RepoStore(repo)
        sock = control.socket_path(store_dir, os.getpid())
        lock_info = {
            'purpose': 'staging mount',
            'mountpoint': mountpoint,
            'socket': sock,
            'log': str(log_path),
        }
        co = WriterCheckout(
            store, branch, store.config_get('user_name'), store.config_get('user_email'), lock_info
        )
        try:
            view = StagingView(co, branch=branch, attrs=AttrTable(store))
            server = control.ControlServer(sock, control_handler(view))
            try:
                info = mount_info(repo, log_path, 'staging', socket=sock, adapter=adapter)
                _serve_staging(InfoView(view, info), view, mountpoint, on_ready, adapter, debug)
            finally:
                server.close()
                view.close()
        finally:
            co.close()

    return serve


def _serve_staging(
    source: Any, view: Any, mountpoint: str, on_ready: Callable[[], None], adapter: str, debug: bool
) -> None:
    if adapter == 'lowlevel':
        from hangarfs.fs.lowlevel_staging import StagingFS

        StagingFS(source, view, mountpoint=mountpoint, on_ready=on_ready, debug=debug).serve()
        return
    from hangarfs.fs import mount as fuse_mount
    from hangarfs.fs.mount_staging import StagingOperations

    ops = StagingOperations(source, view, mountpoint=mountpoint, on_ready=on_ready)
    serve_until_unmounted(
        lambda: fuse_mount.serve(ops, mountpoint, read_only=False, foreground_debug=debug), mountpoint
    )


def control_handler(view: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Answers the control socket's requests: the CLI's changes that need the writer (see
    ``writer_ops.py``), ``ping``, and ``scratch`` (the mount's scratch files)."""
    from hangarfs.fs import writer_ops

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        op = request.get('op')
        try:
            if op == 'ping':
                return {'ok': True}
            if op == 'scratch':
                return {'ok': True, 'files': view.scratch_files()}
            return {'ok': True, **writer_ops.apply(view.co, request, view)}
        except (HangarfsError, ValueError, OSError, KeyError, TypeError) as err:
            text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
            return {'ok': False, 'error': text, 'type': type(err).__name__}

    return handle


# ------------------------------------------------------------------------------------------- signals

FUSE_STOPPED_BY_SIGNAL = 8  # what libfuse's fuse_main returns when its loop ended on a signal


def serve_until_unmounted(serve: Callable[[], None], mountpoint: str) -> None:
    """Run ``serve`` (the FUSE loop); SIGTERM unmounts the mount, so the loop ends as on ``umount``.

    libfuse would otherwise catch SIGTERM itself and end its loop with an error status, which mfusepy
    raises as ``RuntimeError(8)``. A Python handler keeps libfuse from installing its own (it only
    replaces the default disposition); the signal wakes a thread that unmounts, lazily, as libfuse
    does. SIGINT (Ctrl-C in the foreground) is still libfuse's: its status 8 is logged, not raised.
    """
    r, w = os.pipe()
    os.set_blocking(w, False)
    in_main = threading.current_thread() is threading.main_thread()
    old_fd = signal.set_wakeup_fd(w) if in_main else -1
    old_handler = signal.signal(signal.SIGTERM, lambda *_: None) if in_main else None
    watcher = threading.Thread(target=_unmount_on_signal, args=(r, mountpoint), daemon=True)
    watcher.start()
    try:
        serve()
    except RuntimeError as err:
        if err.args != (FUSE_STOPPED_BY_SIGNAL,):
            raise
        log.info('stopped by a signal; unmounted %s', mountpoint)
    finally:
        if in_main:
            signal.set_wakeup_fd(old_fd)
            signal.signal(signal.SIGTERM, old_handler)
        os.close(w)


def _unmount_on_signal(r: int, mountpoint: str) -> None:
    try:
        while True:
            data = os.read(r, 64)
            if not data:
                return
            if signal.SIGTERM in data:
                log.info('SIGTERM: unmounting %s', mountpoint)
                subprocess.run(['fusermount3', '-u', '-z', mountpoint], capture_output=True, timeout=30)
                return
    except OSError:
        return
    finally:
        os.close(r)
