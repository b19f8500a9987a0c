"""Repository commands: init, status, log, summary, verify."""

from __future__ import annotations

import getpass
import json
import socket
import subprocess
import sys

import click

from hangarfs.cli.app import Context, main, pass_ctx, progress, reported
from hangarfs.engine.repository import DEFAULT_BRANCH, Repository


def default_user() -> tuple[str, str]:
    def git(key: str) -> str:
        try:
            out = subprocess.run(['git', 'config', key], capture_output=True, text=True, timeout=5)
            return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ''

    name = git('user.name') or getpass.getuser()
    email = git('user.email') or f'{getpass.getuser()}@{socket.gethostname()}'
    return name, email


@main.command()
@click.option('--name', 'user_name', help='Author name for commits (default: git config user.name).')
@click.option('--email', 'user_email', help='Author email (default: git config user.email).')
@click.option(
    '--default-backend', help="Backend for new columns: 'hdf5', 'numpy' or 'lmdb' (default: by size)."
)
@click.option('--remove-old', is_flag=True, help='Replace an existing repository (deletes all its history).')
@pass_ctx
def init(
    ctx: Context, user_name: str | None, user_email: str | None, default_backend: str | None, remove_old: bool
) -> None:
    """Create a repository in the current directory (or -C PATH)."""
    dname, demail = default_user()
    with reported():
        repo = Repository(ctx.path, exists=False)
        repo.init(
            user_name or dname, user_email or demail, remove_old=remove_old, default_backend=default_backend
        )
    click.echo(f'initialized an empty hangarfs repository in {ctx.path} (branch {DEFAULT_BRANCH})')


@main.command()
@pass_ctx
def status(ctx: Context) -> None:
    """Show the writer's branch, who holds the writer lock, and the staged changes (the net difference
    from the branch's head, as the next commit would record it)."""
    from hangarfs.engine.staging_status import staging_status

    with reported():
        st = staging_status(ctx.repo().store)
    click.echo(f'On branch {st.branch}, at {st.base[:12] or "(no commits yet)"}')
    if st.head != st.base:
        click.echo(f'The branch has moved to {st.head[:12]} since these changes were staged')
    holder = st.lock_holder
    if holder is not None:
        who = f'pid {holder.get("pid")} on {holder.get("host")}'
        if holder.get('mountpoint'):
            who += f', staging mount at {holder["mountpoint"]}'
        click.echo(f'Writer lock held by {who}')
        scratch = _scratch_files(holder)
        if scratch:
            more = f' and {len(scratch) - 10} more' if len(scratch) > 10 else ''
            click.echo(
                'Scratch files in the staging mount (no samples; dropped at unmount unless renamed onto '
                f'sample names): {", ".join(scratch[:10])}{more}'
            )
    if st.clean:
        click.echo('Nothing staged.')
        return
    click.echo('Staged changes (hangarfs diff --staged --keys lists them):')
    schema = st.diff.schema_changes
    counts = st.column_counts()
    for name in sorted(schema.added | schema.deleted | schema.mutated | set(counts)):
        parts = []
        if name in schema.added:
            parts.append('new column')
        elif name in schema.deleted:
            parts.append('column removed')
        elif name in schema.mutated:
            parts.append('schema changed')
        if name not in schema.deleted:
            parts += [f'{n} {kind}' for kind, n in counts.get(name, {}).items() if n]
        click.echo(f'  column {name}: {", ".join(parts)}')
    meta = st.diff.metadata.counts()
    if any(meta.values()):
        click.echo('  metadata: ' + ', '.join(f'{n} {kind}' for kind, n in meta.items() if n))


def _scratch_files(holder: dict[str, object]) -> list[str]:
    """The scratch files of the staging mount holding the writer (none if it does not answer)."""
    from hangarfs.fs import control

    if not holder.get('socket'):
        return []
    try:
        reply = control.request(str(holder['socket']), {'op': 'scratch'}, timeout=5)
    except OSError:
        return []
    files = reply.get('files') if reply.get('ok') else None
    return [str(f) for f in files] if isinstance(files, list) else []


@main.command()
@click.argument('ref', required=False)
@click.option('--time', 'show_time', is_flag=True, help='Show commit times.')
@click.option('--user', 'show_user', is_flag=True, help='Show authors.')
@click.option('--graph', is_flag=True, help='Draw the commit graph (as git log --graph --oneline).')
@click.option('-n', '--max-count', type=click.IntRange(min=0), help='Show only the newest N commits.')
@pass_ctx
def log(
    ctx: Context, ref: str | None, show_time: bool, show_user: bool, graph: bool, max_count: int | None
) -> None:
    """Show the commits of REF (a branch, tag, commit, HEAD, master~2...; default: the writer's
    branch), newest first, one line each as git log --oneline prints them."""
    with reported():
        repo = ctx.repo()
        branch = ref if ref and repo.store.refs.branch_head(ref) is not None else None
        repo.log(
            branch=branch,
            commit=None if branch else ref,
            show_time=show_time,
            show_user=show_user,
            graph=graph,
            max_count=max_count,
        )


@main.command()
@click.argument('ref', required=False)
@click.option('--json', 'as_json', is_flag=True, help='Print JSON.')
@pass_ctx
def summary(ctx: Context, ref: str | None, as_json: bool) -> None:
    """Summarize what the repository holds at REF (default: master)."""
    with reported():
        repo = ctx.repo()
        if as_json:
            click.echo(
                json.dumps(repo.summary(commit=ref or '', return_contents=True), indent=2, default=str)
            )
        else:
            repo.summary(commit=ref or '')


@main.command()
@click.option(
    '--remote',
    'remote_name',
    metavar='NAME',
    help='Check what the remote NAME holds instead: every pack, index, commit, tree node and sample '
    '(against its content digest); the remote is read once.',
)
@pass_ctx
def verify(ctx: Context, remote_name: str | None) -> None:
    """Re-hash every commit, tree node and sample, staged samples too; exit 1 and list problems if any.

    A progress bar on stderr counts the samples (when stderr is a terminal, or HANGARFS_PROGRESS=1)."""
    from hangarfs.engine.verify import verify_store

    if remote_name is not None:
        from hangarfs.cli.app import ByteProgress
        from hangarfs.engine.remote.verify_remote import verify_remote

        with reported():
            remote_report = verify_remote(ctx.repo().store, remote_name, progress=ByteProgress())
        click.echo(str(remote_report))
        if not remote_report.ok:
            sys.exit(1)
        return
    with reported():
        repo = ctx.repo()
        update, close = progress(None, 'verify')
        try:
            report = verify_store(repo.store, update)
        finally:
            close()
    click.echo(str(report))
    if not report.ok:
        sys.exit(1)
