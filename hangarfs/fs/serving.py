"""What a mount's daemon runs: open the repository, build the view, serve it over FUSE.

The CLI validates its arguments and forks the daemon (``daemon.py``); the functions here build the
``serve(on_ready, log_path)`` callable the daemon calls: a read-only mount (a commit, a branch or every
ref) or a staging mount (the writer, its view and its control socket).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hangarfs.engine.store import ResolvedRef
from hangarfs.errors import HangarfsError

Serve = Callable[[Callable[[], None], Path], None]


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


def read_only_server(
    repo: str, mountpoint: str, resolved: ResolvedRef | None, label: str, debug: bool
) -> Serve:
    """A read-only mount: of every ref when ``resolved`` is None, else of a branch or a commit."""

    def serve(on_ready: Callable[[], None], log_path: Path) -> None:
        from hangarfs.engine.store import RepoStore
        from hangarfs.fs import mount as fuse_mount
        from hangarfs.fs.view import AllRefsView, BranchView, CommitView, InfoView, MountSource

        store = RepoStore(repo)
        view: MountSource
        if resolved is None:
            view = AllRefsView(store)
        elif resolved.branch:
            view = BranchView(store, resolved.branch)
        else:
            view = CommitView(store, resolved.commit, ref=label)
        info = mount_info(repo, log_path, 'read-only')
        ops = fuse_mount.HangarfsOperations(InfoView(view, info), mountpoint=mountpoint, on_ready=on_ready)
        fuse_mount.serve(ops, mountpoint, read_only=True, foreground_debug=debug)

    return serve


def staging_server(repo: str, mountpoint: str, branch: str, store_dir: Path) -> Serve:
    """A staging mount: hold the writer of ``branch``, serve its view and the control socket."""

    def serve(on_ready: Callable[[], None], log_path: Path) -> None:
        from hangarfs.engine.checkout import WriterCheckout
        from hangarfs.engine.store import RepoStore
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
        view = StagingView(co, branch=branch)
        server = control.ControlServer(sock, control_handler(view))
        try:
            info = mount_info(repo, log_path, 'staging', socket=sock)
            ops = fuse_mount.StagingOperations(
                InfoView(view, info), view, mountpoint=mountpoint, on_ready=on_ready
            )
            fuse_mount.serve(ops, mountpoint, read_only=False)
        finally:
            server.close()
            co.close()

    return serve


def control_handler(view: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Answers the control socket's requests (``hangarfs commit`` while a staging mount is up)."""

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        op = request.get('op')
        try:
            if op == 'commit':
                return {'ok': True, 'commit': view.commit(str(request.get('message', '')))}
            if op == 'ping':
                return {'ok': True}
            return {'ok': False, 'error': f'unknown request {op!r}', 'type': 'ValueError'}
        except (HangarfsError, ValueError) as err:
            return {'ok': False, 'error': str(err), 'type': type(err).__name__}

    return handle
