"""What a mount's daemon runs: open the repository, build the view, serve it over FUSE.

The CLI validates its arguments and forks the daemon (``daemon.py``); the functions here build the
``serve(on_ready, log_path)`` callable the daemon calls: a read-only mount (a commit, a branch or every
ref) or a staging mount (the writer, its view and its control socket).
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
    debug: bool,
    lazy: LazyOptions | None = None,
) -> Serve:
    """A read-only mount: of every ref when ``resolved`` is None, else of a branch or a commit.
    With ``lazy``, samples only a remote holds are fetched when read (``hangarfs.engine.remote.lazy``)."""

    def serve(on_ready: Callable[[], None], log_path: Path) -> None:
        from hangarfs.engine.store import RepoStore
        from hangarfs.fs import mount as fuse_mount
        from hangarfs.fs.view import AllRefsView, BranchView, CommitView, InfoView, MountSource

        store = RepoStore(repo)
        reader = None
        if lazy is not None:
            from hangarfs.engine.remote.lazy import attach_lazy_reader

            reader = attach_lazy_reader(store, cache_dir=lazy.cache_dir, cache_size=lazy.cache_size)
        view: MountSource
        if resolved is None:
            view = AllRefsView(store)
        elif resolved.branch:
            view = BranchView(store, resolved.branch)
        else:
            view = CommitView(store, resolved.commit, ref=label)
        if reader is not None:
            from hangarfs.fs.lazy_view import LazyView

            view = LazyView(view, reader)
        info = mount_info(repo, log_path, 'lazy' if lazy is not None else 'read-only')
        ops = fuse_mount.HangarfsOperations(InfoView(view, info), mountpoint=mountpoint, on_ready=on_ready)
        try:
            serve_until_unmounted(
                lambda: fuse_mount.serve(ops, mountpoint, read_only=True, foreground_debug=debug), mountpoint
            )
        finally:
            if reader is not None:
                log.info('lazy reads: %s', reader.stats())
                reader.close()

    return serve


def staging_server(repo: str, mountpoint: str, branch: str, store_dir: Path) -> Serve:
    """A staging mount: hold the writer of ``branch``, serve its view and the control socket."""

    def serve(on_ready: Callable[[], None], log_path: Path) -> None:
        from hangarfs.engine.attr_table import AttrTable
        from hangarfs.engine.store import RepoStore
        from hangarfs.engine.writer_checkout import WriterCheckout
        from hangarfs.fs import control
        from hangarfs.fs import mount as fuse_mount
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
                info = mount_info(repo, log_path, 'staging', socket=sock)
                ops = fuse_mount.StagingOperations(
                    InfoView(view, info), view, mountpoint=mountpoint, on_ready=on_ready
                )
                serve_until_unmounted(lambda: fuse_mount.serve(ops, mountpoint, read_only=False), mountpoint)
            finally:
                server.close()
                view.close()
        finally:
            co.close()

    return serve


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
