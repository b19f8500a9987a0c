"""Mount commands: mount, umount, mounts."""

from __future__ import annotations

import json
import os

import click

from hangarfs.cli.app import fail, main, reported
from hangarfs.engine.repository import DEFAULT_BRANCH


@main.command()
@click.argument('repo_path', metavar='REPO', type=click.Path(file_okay=False))
@click.argument('mountpoint')
@click.option('--ref', default=None, help='Branch, tag, commit digest or unique prefix (default: master).')
@click.option('--all-refs', is_flag=True, help='Mount every ref: branches/NAME, tags/NAME, commits/DIGEST.')
@click.option('--write', 'writable', is_flag=True, help='Mount the staging area of --branch, writable.')
@click.option('--branch', default=None, help='With --write: the branch whose staging area to mount.')
@click.option(
    '--lazy',
    is_flag=True,
    help='Fetch samples only a remote holds when they are read (verified, cached); see --cache-size.',
)
@click.option(
    '--cache-size',
    default='10G',
    show_default=True,
    metavar='SIZE',
    help='With --lazy: bytes of fetched samples kept (10G, 512M ...); least recently used go first.',
)
@click.option(
    '--cache-dir', default=None, metavar='DIR', help='With --lazy: where (default REPO/.hangarfs/lazy-cache).'
)
@click.option('--foreground', '-f', is_flag=True, help='Stay attached (logs also go to stderr).')
@click.option('--debug', is_flag=True, help='Log every FUSE request to the mount log.')
@click.option(
    '--adapter',
    type=click.Choice(['lowlevel', 'mfusepy']),
    default=None,
    hidden=True,
    help='FUSE adapter (default lowlevel, or $HANGARFS_FUSE_ADAPTER); mfusepy is kept for benchmarks.',
)
def mount(
    repo_path: str,
    mountpoint: str,
    ref: str | None,
    all_refs: bool,
    writable: bool,
    branch: str | None,
    lazy: bool,
    cache_size: str,
    cache_dir: str | None,
    foreground: bool,
    debug: bool,
    adapter: str | None,
) -> None:
    """Mount REPO at MOUNTPOINT: a commit or tag (immutable), a branch (follows its head), or with
    --write the staging area of a branch (cp .npy files in, commit with `hangarfs commit`).

    With --lazy (a clone, or a remote-tracking branch such as --ref origin/master), listing and stat
    need no data, and reading a file fetches its sample from the remote, checks its digest before a
    byte is served, and keeps it in a cache of --cache-size."""
    from hangarfs.engine.lmdbenv import ENVIRONMENTS
    from hangarfs.engine.lock import WriterLock
    from hangarfs.engine.store import RepoStore
    from hangarfs.errors import WriterLockHeld
    from hangarfs.fs import daemon, serving

    with reported():
        if all_refs and ref:
            fail('give either --ref or --all-refs, not both')
        if writable and (ref or all_refs):
            fail('--write mounts the staging area of a branch: give --branch, not --ref or --all-refs')
        if branch and not writable:
            fail('--branch goes with --write; to mount a branch read-only use --ref BRANCH')
        if lazy and writable:
            fail('--lazy mounts a commit or branch read-only; it does not go with --write')
        lazy_options = None
        if lazy:
            from hangarfs.engine.remote.sample_cache import parse_size

            lazy_options = serving.LazyOptions(
                parse_size(cache_size), os.path.abspath(cache_dir) if cache_dir else None
            )
        repo_abs = os.path.abspath(repo_path)
        store = RepoStore(repo_abs)
        if writable:
            branch = branch or DEFAULT_BRANCH
            if store.refs.branch_head(branch) is None:
                fail(f'no branch named {branch!r}')
            holder = WriterLock(store.lock_path, repo_abs).is_locked_by_other()
            if holder is not None:
                raise WriterLockHeld(repo_abs, holder)
            resolved = None
            label = branch
        else:
            resolved = None if all_refs else store.refs.resolve(ref or DEFAULT_BRANCH)
            label = '--all-refs' if resolved is None else (ref or DEFAULT_BRANCH)
        mp = daemon.check_mountpoint(mountpoint)
        adapter = serving.adapter_name(adapter, lazy=lazy)
        if writable:
            serve = serving.staging_server(repo_abs, mp, label, store.dir, adapter, debug)
        else:
            serve = serving.read_only_server(repo_abs, mp, resolved, label, adapter, debug, lazy_options)
        log_dir = store.dir / 'logs'
        store.close()
        ENVIRONMENTS.close_all()  # the daemon opens its own; LMDB handles must not cross fork()
        if foreground:
            daemon.run_foreground(
                serve, log_dir, lambda log: click.echo(f'mounted {label} at {mp} (log: {log})')
            )
            return
        started = daemon.start_daemon(serve, log_dir)
    if writable:
        what = ' (staging area, writable)'
    else:
        what = f' (commit {resolved.commit[:12]})' if resolved is not None and resolved.commit else ''
        what += ', lazy' if lazy else ''
    click.echo(f'mounted {label}{what} of {repo_abs} at {mp} (pid {started.pid}, log {started.log_path})')


@main.command()
@click.argument('mountpoint')
@click.option('--lazy', '-z', is_flag=True, help='Detach now even if busy (fusermount3 -uz).')
def umount(mountpoint: str, lazy: bool) -> None:
    """Unmount a hangarfs mount (staged work of a staging mount stays staged)."""
    from hangarfs.fs import daemon

    with reported():
        daemon.unmount(mountpoint, lazy=lazy)
    click.echo(f'unmounted {os.path.abspath(mountpoint)}')


@main.command()
@click.option('--json', 'as_json', is_flag=True, help='Print JSON.')
def mounts(as_json: bool) -> None:
    """List this machine's hangarfs mounts: mountpoint, repository, ref, commit, pid, log."""
    from hangarfs.fs import daemon

    found = daemon.list_mounts()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo('no hangarfs mounts')
        return
    for m in found:
        commit = (m.get('commit') or '')[:12]
        click.echo(
            f'{m["mountpoint"]}  repo={m.get("repo", "?")}  ref={m.get("ref", "?")}  commit={commit or "-"}  '
            f'mode={m.get("mode", "?")}  pid={m.get("pid", "?")}  log={m.get("log", "?")}'
            + (f'  [{m["status"]}]' if 'status' in m else '')
        )
