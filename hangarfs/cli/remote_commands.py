"""Remote commands: clone, remote add|list|remove|ping, fetch, fetch-data, push.

Each parses its arguments, calls the engine (``hangarfs.engine.remote``) with a progress bar in bytes
and prints what happened in one or two lines.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from hangarfs.cli.app import ByteProgress, Context, fail, main, pass_ctx, reported
from hangarfs.engine.repository import Repository


def remote_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options a remote is opened with (kept in the repository; credentials never are)."""
    for decorator in reversed(
        [
            click.option('--endpoint-url', help='S3-compatible endpoint (MinIO, Ceph, moto ...).'),
            click.option('--region', help='S3 region (default: AWS_REGION, the profile, us-east-1).'),
            click.option('--profile', help='AWS profile of ~/.aws/credentials to take the keys from.'),
            click.option(
                '--anonymous', is_flag=True, default=None, help='Unsigned requests (a public bucket).'
            ),
            click.option(
                '--unsafe-single-writer',
                is_flag=True,
                default=None,
                help='A store without conditional writes that only one process ever pushes to.',
            ),
        ]
    ):
        fn = decorator(fn)
    return fn


def _options(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None}


def _mb(n: int) -> str:
    return f'{n / 1e6:.1f} MB'


def default_directory(url: str) -> str:
    """What ``git clone`` would call the directory: the last part of the URL, without ``.remote``."""
    last = url.rstrip('/').rsplit('/', 1)[-1] or 'repository'
    for suffix in ('.remote', '.hangarfs'):
        last = last.removesuffix(suffix)
    return last or 'repository'


@main.command()
@click.argument('url')
@click.argument('target_dir', metavar='[DIR]', required=False)
@click.option('--name', 'user_name', help='Author name for commits (default: git config user.name).')
@click.option('--email', 'user_email', help='Author email (default: git config user.email).')
@remote_options
@pass_ctx
def clone(
    ctx: Context,
    /,
    url: str,
    target_dir: str | None,
    user_name: str | None,
    user_email: str | None,
    **options: Any,
) -> None:
    """Clone the remote at URL into DIR (default: the last part of URL): its history, schemas and
    trees, no sample data (fetch it with `hangarfs fetch-data origin master`, or mount lazily with
    `hangarfs mount DIR MNT --ref master --lazy`)."""
    from hangarfs.cli.repo_commands import default_user
    from hangarfs.engine.remote.clone import clone_repository

    dname, demail = default_user()
    target = os.path.join(ctx.path, target_dir or default_directory(url))
    with reported():
        repo = Repository(target, exists=False)
        branch, report = clone_repository(
            repo,
            user_name or dname,
            user_email or demail,
            url,
            options=_options(**options),
            progress=ByteProgress(),
        )
    click.echo(
        f'cloned {url} into {target}: {report.commits} commits, branches '
        f'{", ".join(sorted(report.branches)) or "(none: the remote is empty)"}, {report.samples} samples on '
        f'the remote only; on branch {branch}'
    )


@main.group()
def remote() -> None:
    """Manage the remotes of the repository (add, list, remove, ping)."""


@remote.command('add')
@click.argument('name')
@click.argument('url')
@remote_options
@pass_ctx
def remote_add(ctx: Context, /, name: str, url: str, **options: Any) -> None:
    """Add the remote NAME at URL (s3://BUCKET/PREFIX, a directory, any fsspec URL)."""
    with reported():
        info = ctx.repo().remote.add(name, url, **_options(**options))
    click.echo(f'added remote {info.name}: {info.address}')


@remote.command('list')
@click.option('-v', '--verbose', is_flag=True, help='Also the options and remote-tracking branches.')
@pass_ctx
def remote_list(ctx: Context, verbose: bool) -> None:
    """List the remotes: name and URL."""
    from hangarfs.engine.remote.config import list_remotes
    from hangarfs.engine.remote.tracking import tracking_heads

    with reported():
        repo = ctx.repo()
        remotes = list_remotes(repo.store)
        for r in remotes:
            if not verbose:
                click.echo(f'{r.name}\t{r.url}')
                continue
            opts = ' '.join(f'{k}={v}' for k, v in sorted(r.options.items()))
            click.echo(f'{r.name}\t{r.url}' + (f'\t{opts}' if opts else ''))
            for b, c in sorted(tracking_heads(repo.store, r.name).items()):
                click.echo(f'  {r.name}/{b}\t{c[:12]}')


@remote.command('remove')
@click.argument('name')
@pass_ctx
def remote_remove(ctx: Context, name: str) -> None:
    """Forget the remote NAME and its remote-tracking branches (fetched data stays)."""
    with reported():
        info = ctx.repo().remote.remove(name)
    click.echo(f'removed remote {info.name} ({info.address})')


@remote.command('ping')
@click.argument('name')
@pass_ctx
def remote_ping(ctx: Context, name: str) -> None:
    """Open the remote NAME and read its refs; print how long it took."""
    with reported():
        seconds = ctx.repo().remote.ping(name)
    click.echo(f'{name}: answered in {seconds * 1000:.0f} ms')


@main.command()
@click.argument('remote_name', metavar='REMOTE')
@click.argument('branches', metavar='[BRANCH]...', nargs=-1)
@pass_ctx
def fetch(ctx: Context, remote_name: str, branches: tuple[str, ...]) -> None:
    """Fetch the history of BRANCH (default: every branch) of REMOTE into REMOTE/BRANCH: commits,
    schemas and trees, no sample data."""
    from hangarfs.engine.remote.fetch import fetch as fetch_history

    with reported():
        repo = ctx.repo()
        report = fetch_history(repo.store, remote_name, list(branches) or None, progress=ByteProgress())
    for b, (old, new) in sorted(report.branches.items()):
        if old == new:
            click.echo(f'{remote_name}/{b}: up to date at {new[:12]}')
        else:
            click.echo(f'{remote_name}/{b}: {(old or "(new)")[:12]} -> {new[:12]}')
    click.echo(
        f'fetched {report.commits} commits, {report.objects} tree nodes and records ({_mb(report.bytes)} '
        f'downloaded); {report.samples} new samples on the remote only (fetch-data brings them)'
        + (f'; new tags: {", ".join(report.tags)}' if report.tags else '')
    )
    if report.tag_conflicts:
        click.echo(
            f'kept local tags that differ from the remote: {", ".join(report.tag_conflicts)}', err=True
        )


def _read_keys(path: str, nested: bool) -> list[Any]:
    """Keys, one a line, named as the mount names files (5 -> 5, @5 -> '5'); KEY/SUBKEY in a nested
    column (KEY alone: every subsample); a file extension is dropped."""
    from hangarfs.fs.names import name_to_key

    text = sys.stdin.read() if path == '-' else open(path, encoding='utf-8').read()  # noqa: SIM115
    keys: list[Any] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        for ext in ('.npy', '.txt', '.bin'):
            line = line.removesuffix(ext)
        try:
            if nested and '/' in line:
                key, sub = line.split('/', 1)
                keys.append((name_to_key(key), name_to_key(sub)))
            else:
                keys.append(name_to_key(line))
        except ValueError as err:
            fail(f'{path}, line {n}: {err}')
    return keys


@main.command('fetch-data')
@click.argument('remote_name', metavar='REMOTE')
@click.argument('ref')
@click.option('-c', '--column', 'columns', multiple=True, help='Only this column (repeat for more).')
@click.option(
    '--keys',
    'keys_file',
    metavar='FILE',
    help='Only these keys of the one -c COLUMN, one a line (- reads stdin).',
)
@click.option('--max-bytes', metavar='SIZE', help='Stop after this much sample data (10G, 512M ...).')
@click.option('--all-history', is_flag=True, help='Also the data of every ancestor of REF.')
@pass_ctx
def fetch_data(
    ctx: Context,
    remote_name: str,
    ref: str,
    columns: tuple[str, ...],
    keys_file: str | None,
    max_bytes: str | None,
    all_history: bool,
) -> None:
    """Fetch the sample data of REF (a branch, REMOTE/BRANCH, tag or commit) from REMOTE, checked
    against the samples' digests before it is stored."""
    from hangarfs.engine.history import iter_ancestors
    from hangarfs.engine.remote.fetch_data import fetch_wanted, select_columns, select_samples
    from hangarfs.engine.remote.sample_cache import parse_size

    with reported():
        repo = ctx.repo()
        store = repo.store
        commit = store.refs.resolve(ref).commit
        if not commit:
            fail(f'{ref!r} has no commits yet')
        budget = parse_size(max_bytes) if max_bytes else None
        if keys_file is not None:
            if len(columns) != 1 or all_history:
                fail('--keys takes exactly one -c COLUMN (and no --all-history)')
            schema = store.objects.snapshot(commit).columns.get(columns[0])
            keys = _read_keys(keys_file, schema is not None and schema.schema.nested)
            wanted = select_samples(store, commit, columns[0], keys)
            commits = [commit]
        else:
            commits = list(iter_ancestors(store.refs.parents, [commit])) if all_history else [commit]
            wanted = select_columns(store, commits, list(columns) or None)
        report = fetch_wanted(
            store, remote_name, wanted, commits, max_num_bytes=budget, progress=ByteProgress()
        )
    click.echo(
        f'fetched {report.samples} samples ({_mb(report.bytes)}) of {len(commits)} commit(s) from '
        f'{remote_name}; {report.already_local} were here already'
        + (f'; {report.left_out} left out by --max-bytes' if report.left_out else '')
    )


@main.command()
@click.argument('remote_name', metavar='REMOTE')
@click.argument('branch')
@click.option('--force', is_flag=True, help='Move the remote branch even if that drops its commits.')
@pass_ctx
def push(ctx: Context, remote_name: str, branch: str, force: bool) -> None:
    """Push BRANCH to REMOTE: what the remote lacks, then the branch (a fast-forward unless --force)."""
    from hangarfs.engine.remote.push import push as push_branch

    with reported():
        report = push_branch(ctx.repo().store, remote_name, branch, force=force, progress=ByteProgress())
    if report.up_to_date:
        click.echo(f'{remote_name}/{branch} is up to date at {report.new_head[:12]}')
        return
    old = (report.old_head or '(new branch)')[:12]
    click.echo(
        f'pushed {branch} to {remote_name}: {old} -> {report.new_head[:12]}'
        + (' (forced)' if report.forced else '')
        + f'; {report.commits} commits, {report.samples} samples ({_mb(report.sample_bytes)}) sent, '
        f'{report.samples_skipped} the remote had'
        + (f'; tags: {", ".join(report.tags)}' if report.tags else '')
    )
    if report.tag_conflicts:
        click.echo(
            f'not pushed (the remote has them elsewhere): tags {", ".join(report.tag_conflicts)}', err=True
        )
