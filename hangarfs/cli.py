"""The ``hangarfs`` command: git-like, on the repository in the current directory or ``-C PATH``.

Thin by design: it parses arguments, calls the engine (or the fs layer for files and mounts), prints.
Exit status is 0 on success; otherwise 1 with a one-line reason on stderr (2 for usage errors).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from hangarfs.engine.repository import DEFAULT_BRANCH, Repository
from hangarfs.engine.staging import SET, StagingArea
from hangarfs.engine.store import is_repository
from hangarfs.errors import HangarfsError, RepositoryNotFound


class CliError(click.ClickException):
    """A failure reported as one line on stderr with exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f'hangarfs: error: {self.format_message()}', err=True)


def fail(message: str) -> NoReturn:
    raise CliError(message)


@contextmanager
def reported() -> Iterator[None]:
    """Turn expected errors into one-line CLI errors (tracebacks are for bugs only)."""
    try:
        yield
    except click.ClickException:
        raise
    except (HangarfsError, OSError, ValueError, KeyError, TypeError) as err:
        text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        fail(text.splitlines()[0] if text else type(err).__name__)


class Context:
    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)

    def repo(self) -> Repository:
        if not is_repository(self.path):
            raise RepositoryNotFound(self.path)
        return Repository(self.path)


pass_ctx = click.make_pass_decorator(Context)


def _progress(total: int, label: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A tqdm progress bar on stderr when it is a terminal (or forced), else nothing."""
    if not sys.stderr.isatty() and not os.environ.get('HANGARFS_PROGRESS'):
        return (lambda n: None), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit='sample', file=sys.stderr)
    return bar.update, bar.close


@click.group(context_settings={'help_option_names': ['-h', '--help']})
@click.option('-C', 'path', default='.', metavar='PATH', help='Run as if started in PATH (the repository).')
@click.version_option(package_name='hangarfs')
@click.pass_context
def main(ctx: click.Context, path: str) -> None:
    """Version control for tensor data, with a filesystem front end."""
    ctx.obj = Context(path)


# -------------------------------------------------------------------------------------------- setup


def _default_user() -> tuple[str, str]:
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
    dname, demail = _default_user()
    with reported():
        repo = Repository(ctx.path, exists=False)
        repo.init(
            user_name or dname, user_email or demail, remove_old=remove_old, default_backend=default_backend
        )
    click.echo(f'initialized an empty hangarfs repository in {ctx.path} (branch {DEFAULT_BRANCH})')


@main.command()
@pass_ctx
def status(ctx: Context) -> None:
    """Show the writer's branch, the staged changes and who holds the writer lock."""
    with reported():
        repo = ctx.repo()
        store = repo.store
        staging = StagingArea(store)
        info = staging.info()
        branch = info.branch or DEFAULT_BRANCH
        head = store.branch_head(branch) or ''
        click.echo(f'On branch {branch}, at {head[:12] or "(no commits yet)"}')
        holder = _lock_holder(repo)
        if holder is not None:
            who = f'pid {holder.get("pid")} on {holder.get("host")}'
            if holder.get('mountpoint'):
                who += f', staging mount at {holder["mountpoint"]}'
            click.echo(f'Writer lock held by {who}')
        schemas = staging.schemas()
        meta = staging.meta()
        columns = sorted(staging.staged_columns())
        if not (schemas or meta or columns):
            click.echo('Nothing staged.')
            return
        click.echo('Staged changes:')
        for name, schema in sorted(schemas.items()):
            click.echo(f'  column {name}: {"removed" if schema is None else "added or changed schema"}')
        for name in columns:
            sets = dels = 0
            for _, v in staging.iter_prefix(name.encode() + b'\x00'):
                if v[:1] == SET:
                    sets += 1
                else:
                    dels += 1
            click.echo(f'  column {name}: {sets} sample(s) written, {dels} deleted')
        if meta:
            click.echo(f'  metadata: {len(meta)} key(s) changed')


def _lock_holder(repo: Repository) -> dict[str, Any] | None:
    from hangarfs.engine.lock import WriterLock

    return WriterLock(repo.store.lock_path, repo.path).is_locked_by_other()


# ------------------------------------------------------------------------------------------ history


@main.command()
@click.argument('ref', required=False)
@click.option('--time', 'show_time', is_flag=True, help='Show commit times.')
@click.option('--user', 'show_user', is_flag=True, help='Show authors.')
@click.option('--graph', is_flag=True, help='Draw the commit graph (as git log --graph --oneline).')
@pass_ctx
def log(ctx: Context, ref: str | None, show_time: bool, show_user: bool, graph: bool) -> None:
    """Show the commits of REF (a branch, tag or commit; default: the writer's branch)."""
    with reported():
        repo = ctx.repo()
        if ref and repo.store.branch_head(ref) is not None:
            repo.log(branch=ref, show_time=show_time, show_user=show_user, graph=graph)
        else:
            repo.log(commit=ref, show_time=show_time, show_user=show_user, graph=graph)


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
@click.option('-m', '--message', required=True, help='The commit message.')
@pass_ctx
def commit(ctx: Context, message: str) -> None:
    """Commit the staged changes on the writer's branch; prints the commit digest.

    When a staging mount holds the writer, its daemon makes the commit (the mount stays up)."""
    from hangarfs.fs import control

    with reported():
        repo = ctx.repo()
        holder = _lock_holder(repo)
        if holder is not None and holder.get('socket'):
            try:
                reply = control.request(holder['socket'], {'op': 'commit', 'message': message})
            except OSError as err:
                where = holder.get('mountpoint')
                fail(f'the staging mount at {where} holds the writer but does not answer: {err}')
            if not reply.get('ok'):
                fail(str(reply.get('error', 'the staging mount refused to commit')))
            digest = reply['commit']
        else:
            with _writer(repo) as co:
                digest = co.commit(message)
    click.echo(digest)


@contextmanager
def _writer(repo: Repository, branch: str | None = None) -> Iterator[Any]:
    staging_branch = StagingArea(repo.store).info().branch
    co = repo.checkout(write=True, branch=branch or staging_branch or DEFAULT_BRANCH)
    try:
        yield co
    finally:
        co.close()


@main.group()
def branch() -> None:
    """List, create and delete branches."""


@branch.command('list')
@pass_ctx
def branch_list(ctx: Context) -> None:
    """List branches with their head commits; * marks the writer's branch."""
    with reported():
        repo = ctx.repo()
        current = StagingArea(repo.store).info().branch or DEFAULT_BRANCH
        for name, head in sorted(repo.store.list_refs('branch').items()):
            mark = '*' if name == current else ' '
            click.echo(f'{mark} {name:<24} {head[:12] or "(no commits)"}')


@branch.command('create')
@click.argument('name')
@click.argument('base', required=False)
@pass_ctx
def branch_create(ctx: Context, name: str, base: str | None) -> None:
    """Create branch NAME at BASE (a branch, tag or commit; default: the writer's branch head)."""
    with reported():
        head = ctx.repo().create_branch(name, base_commit=base)
    click.echo(f'created branch {head.name} at {head.digest[:12]}')


@branch.command('delete')
@click.argument('name')
@click.option('--force', is_flag=True, help='Delete even if its commits are on no other branch.')
@pass_ctx
def branch_delete(ctx: Context, name: str, force: bool) -> None:
    """Delete branch NAME."""
    with reported():
        head = ctx.repo().remove_branch(name, force_delete=force)
    click.echo(f'deleted branch {head.name} (was {head.digest[:12]})')


# --------------------------------------------------------------------------------- columns and data


@main.group()
def column() -> None:
    """Create and list columns."""


@column.command('create')
@click.argument('name')
@click.argument('dtype')
@click.argument('shape', nargs=-1, type=int)
@click.option('--variable-shape', is_flag=True, help='SHAPE is the maximum shape.')
@click.option('--nested', is_flag=True, help='Samples hold subsamples (key -> subkey -> value).')
@click.option('--backend', help="'hdf5', 'numpy' or 'lmdb' (default: chosen by sample size).")
@click.option(
    '--backend-options', help='Backend options as JSON, e.g. \'{"complib": "blosc:zstd", "complevel": 5}\'.'
)
@pass_ctx
def column_create(
    ctx: Context,
    name: str,
    dtype: str,
    shape: tuple[int, ...],
    variable_shape: bool,
    nested: bool,
    backend: str | None,
    backend_options: str | None,
) -> None:
    """Stage a new column NAME: DTYPE is a numpy dtype (uint8, float32...) or 'str' or 'bytes'."""
    with reported():
        options = json.loads(backend_options) if backend_options else None
        repo = ctx.repo()
        with _writer(repo) as co:
            if dtype in ('str', 'bytes'):
                if shape:
                    fail(f'{dtype} columns take no shape')
                add = co.add_str_column if dtype == 'str' else co.add_bytes_column
                col = add(name, nested, backend=backend, backend_options=options)
            else:
                if not shape and not variable_shape:
                    fail('give the sample shape after the dtype, e.g. `column create images uint8 28 28`')
                col = co.add_ndarray_column(
                    name,
                    shape=shape,
                    dtype=dtype,
                    variable_shape=variable_shape,
                    contains_subsamples=nested,
                    backend=backend,
                    backend_options=options,
                )
            desc = f'{col.column_type}' + (
                f' {col.dtype} {col.shape}' if col.column_type == 'ndarray' else ''
            )
            click.echo(f'staged column {name} ({desc}, backend {col.backend_name})')


@column.command('list')
@click.argument('ref', required=False)
@pass_ctx
def column_list(ctx: Context, ref: str | None) -> None:
    """List the columns at REF (default: master)."""
    with reported():
        info = ctx.repo().summary(commit=ref or '', return_contents=True)
        assert info is not None
        for name, c in info['columns'].items():
            what = f'{_dtype_name(c["dtype"])} {c["shape"]}' if c['kind'] == 'ndarray' else c['kind']
            click.echo(f'{name:<24} {c["samples"]:>10}  {what}  {c["layout"]}  {c["backend"]}')


def _dtype_name(dtype: str) -> str:
    """'uint8' for '|u1' (a stored dtype string), as users write dtypes."""
    import numpy as np

    try:
        return np.dtype(dtype).name
    except TypeError:
        return dtype


@main.command('import')
@click.argument('column_name', metavar='COLUMN')
@click.argument('paths', nargs=-1, required=True, type=click.Path(exists=True))
@click.option('-m', '--message', help='Also commit, with this message.')
@pass_ctx
def import_(ctx: Context, column_name: str, paths: tuple[str, ...], message: str | None) -> None:
    """Stage .npy (.txt, .bin) files into COLUMN; keys from file names (5.npy -> 5, @5.npy -> '5')."""
    from hangarfs.fs.transfer import collect_files, import_files

    with reported():
        repo = ctx.repo()
        with _writer(repo) as co:
            if column_name not in co.columns:
                hint = f'`hangarfs column create {column_name} DTYPE SHAPE...`'
                fail(f'no column named {column_name!r}; create it with {hint}')
            col = co.columns[column_name]
            if col.column_layout == 'nested':
                fail(f'column {column_name!r} is nested; import into it through the staging mount')
            files = collect_files(paths, col.column_type)
            update, close = _progress(len(files), f'import {column_name}')
            try:
                result = import_files(col, files, update)  # type: ignore[arg-type]
            finally:
                close()
            click.echo(
                f'staged {result.samples} sample(s) ({result.bytes / 1e6:.1f} MB) into column {column_name}'
            )
            if message:
                if co.diff.status() == 'CLEAN':
                    fail(f'nothing to commit: the files hold what branch {co.branch_name!r} already has')
                click.echo(co.commit(message))


@main.command('export')
@click.argument('column_name', metavar='COLUMN')
@click.argument('ref', required=False)
@click.option(
    '-o', '--output', required=True, type=click.Path(file_okay=False), help='Directory to write into.'
)
@pass_ctx
def export(ctx: Context, column_name: str, ref: str | None, output: str) -> None:
    """Write every sample of COLUMN at REF (default: master) as one file each into DIR."""
    from hangarfs.fs.transfer import export_column

    with reported():
        repo = ctx.repo()
        co = repo.checkout(commit=ref) if ref else repo.checkout()
        try:
            col = co.columns[column_name]
            update, close = _progress(len(col), f'export {column_name}')
            try:
                result = export_column(col, Path(output), update)
            finally:
                close()
        finally:
            co.close()
    click.echo(f'wrote {result.samples} file(s) ({result.bytes / 1e6:.1f} MB) to {output}')


@main.command()
@pass_ctx
def verify(ctx: Context) -> None:
    """Re-hash every commit, tree node and sample; exit 1 and list problems if any."""
    from hangarfs.engine.verify import verify_store

    with reported():
        repo = ctx.repo()
        report = verify_store(repo.store)
    click.echo(str(report))
    if not report.ok:
        sys.exit(1)


# ------------------------------------------------------------ diff, merge, tags, reset, checkout (issue 3)


def _writer_branch(repo: Repository) -> str:
    return StagingArea(repo.store).info().branch or DEFAULT_BRANCH


def _show_key(key: Any) -> str:
    return '/'.join(repr(k) for k in key) if isinstance(key, tuple) else repr(key)


def _print_diff(result: Any, a: str, b: str, show_keys: bool) -> None:
    click.echo(f'diff {a} ({result.a[:12] or "empty"}) -> {b} ({result.b[:12] or "empty"})')
    if not result:
        click.echo('no differences')
        return
    rows = [(name, result.columns[name]) for name in sorted(result.columns)]
    rows.append(('(metadata)', result.metadata))
    width = max(24, *(len(name) for name, _ in rows))
    click.echo(f'{"column":<{width}} {"added":>10} {"deleted":>10} {"mutated":>10}')
    for name, ch in rows:
        click.echo(f'{name:<{width}} {len(ch.added):>10} {len(ch.deleted):>10} {len(ch.mutated):>10}')
    sc = result.schema_changes
    if sc:
        parts = [f'{kind} {", ".join(sorted(names))}' for kind, names in vars(sc).items() if names]
        click.echo('columns ' + '; '.join(parts))
    if show_keys:
        for name, ch in rows:
            for kind in ('added', 'deleted', 'mutated'):
                keys = ch.to_dict()[kind]
                if keys:
                    shown = ' '.join(_show_key(tuple(k) if isinstance(k, list) else k) for k in keys)
                    click.echo(f'{name} {kind}: {shown}')


@main.command('diff')
@click.argument('a')
@click.argument('b', required=False)
@click.option('--keys', 'show_keys', is_flag=True, help='Also list the keys added, deleted and mutated.')
@click.option('--json', 'as_json', is_flag=True, help='Print JSON (every key).')
@pass_ctx
def diff_cmd(ctx: Context, a: str, b: str | None, show_keys: bool, as_json: bool) -> None:
    """Show how B differs from A (branches, tags, commits; B defaults to the writer's branch)."""
    with reported():
        repo = ctx.repo()
        b = b or _writer_branch(repo)
        result = repo.diff(a, b)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_diff(result, a, b, show_keys)


@main.command('merge')
@click.argument('dev')
@click.option('-m', '--message', help='The merge commit message (default: "Merge DEV into BRANCH").')
@click.option(
    '--strategy',
    type=click.Choice(['ours', 'theirs']),
    help="Resolve every conflict one way: 'ours' keeps the writer's branch, 'theirs' takes DEV.",
)
@pass_ctx
def merge_cmd(ctx: Context, dev: str, message: str | None, strategy: str | None) -> None:
    """Merge DEV (a branch, tag or commit) into the writer's branch; prints the new head."""
    with reported():
        repo = ctx.repo()
        branch_name = _writer_branch(repo)
        before = repo.store.branch_head(branch_name) or ''
        dev_commit = repo.store.resolve(dev).commit
        head = repo.merge(
            message or f'Merge {dev} into {branch_name}',
            master_branch=branch_name,
            dev_branch=dev,
            strategy=strategy,
        )
    if head == before:
        click.echo(f'{branch_name} already contains {dev}: nothing to merge ({head[:12]})')
    elif head == dev_commit:
        click.echo(f'fast-forwarded {branch_name} to {dev} ({head[:12]})')
    else:
        click.echo(f'merged {dev} into {branch_name}: {head}')


@main.command('tag')
@click.argument('name', required=False)
@click.argument('ref', required=False)
@click.option('-m', '--message', help='Why this tag (recorded with the tagger and the time).')
@click.option('-d', '--delete', is_flag=True, help='Delete the tag NAME.')
@pass_ctx
def tag_cmd(ctx: Context, name: str | None, ref: str | None, message: str | None, delete: bool) -> None:
    """List tags; with NAME, tag REF (default: the writer's branch head); with -d, delete NAME."""
    with reported():
        repo = ctx.repo()
        if delete:
            if not name or ref:
                fail('give the one tag to delete: `hangarfs tag -d NAME`')
            gone = repo.remove_tag(name)
            click.echo(f'deleted tag {gone.name} (was {gone.commit[:12]})')
        elif name:
            made = repo.create_tag(name, commit=ref, message=message)
            click.echo(f'tagged {made.commit[:12]} as {made.name}')
        else:
            if message:
                fail('-m needs a tag NAME to create')
            tags = [repo.get_tag(t) for t in repo.list_tags()]
            for t in tags:
                first = t.message.splitlines()[0] if t.message else ''
                click.echo(f'{t.name:<24} {t.commit[:12]}  {first}'.rstrip())
            if not tags:
                click.echo('no tags')


@main.command('reset')
@click.option('--hard', is_flag=True, help='Discard every staged change (there is no undo).')
@pass_ctx
def reset_cmd(ctx: Context, hard: bool) -> None:
    """Return the staging area to the head of the writer's branch."""
    from hangarfs.errors import StagingDirty

    with reported():
        repo = ctx.repo()
        with _writer(repo) as co:
            try:
                head = co.reset_staging_area(force=hard)
            except StagingDirty:
                fail('the staging area holds changes; `hangarfs reset --hard` discards them for good')
            branch_name = co.branch_name
    click.echo(f'staging area reset to {branch_name} at {head[:12] or "(no commits yet)"}')


@main.command('checkout')
@click.argument('branch_name', metavar='BRANCH')
@pass_ctx
def checkout_cmd(ctx: Context, branch_name: str) -> None:
    """Move the writer (and the staging area) to BRANCH; refused while changes are staged."""
    with reported():
        repo = ctx.repo()
        if repo.store.branch_head(branch_name) is None:
            fail(
                f'no branch named {branch_name!r}: the writer works on a branch (make one with '
                f'`hangarfs branch create NAME {branch_name}`); to read a tag or commit, mount it with --ref'
            )
        with _writer(repo, branch_name) as co:
            head = co.commit_hash
    click.echo(f'the writer is on branch {branch_name}, at {head[:12] or "(no commits yet)"}')


# ------------------------------------------------------------------------------------------- mounts


@main.command()
@click.argument('repo_path', metavar='REPO', type=click.Path(file_okay=False))
@click.argument('mountpoint')
@click.option('--ref', default=None, help='Branch, tag, commit digest or unique prefix (default: master).')
@click.option('--all-refs', is_flag=True, help='Mount every ref: branches/NAME, tags/NAME, commits/DIGEST.')
@click.option('--write', 'writable', is_flag=True, help='Mount the staging area of --branch, writable.')
@click.option('--branch', default=None, help='With --write: the branch whose staging area to mount.')
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
    foreground: bool,
    debug: bool,
    adapter: str | None,
) -> None:
    """Mount REPO at MOUNTPOINT: a commit or tag (immutable), a branch (follows its head), or with
    --write the staging area of a branch (cp .npy files in, commit with `hangarfs commit`)."""
    from hangarfs.engine.lmdbenv import ENVIRONMENTS
    from hangarfs.engine.lock import WriterLock
    from hangarfs.engine.store import RepoStore
    from hangarfs.errors import WriterLockHeld
    from hangarfs.fs import daemon

    with reported():
        if all_refs and ref:
            fail('give either --ref or --all-refs, not both')
        if writable and (ref or all_refs):
            fail('--write mounts the staging area of a branch: give --branch, not --ref or --all-refs')
        if branch and not writable:
            fail('--branch goes with --write; to mount a branch read-only use --ref BRANCH')
        repo_abs = os.path.abspath(repo_path)
        store = RepoStore(repo_abs)
        if writable:
            branch = branch or DEFAULT_BRANCH
            if store.branch_head(branch) is None:
                fail(f'no branch named {branch!r}')
            holder = WriterLock(store.lock_path, repo_abs).is_locked_by_other()
            if holder is not None:
                raise WriterLockHeld(repo_abs, holder)
            resolved = None
            label = branch
        else:
            resolved = None if all_refs else store.resolve(ref or DEFAULT_BRANCH)
            label = '--all-refs' if resolved is None else (ref or DEFAULT_BRANCH)
        mp = daemon.check_mountpoint(mountpoint)
        adapter = daemon.adapter_name(adapter)
        if writable:
            serve = _staging_server(repo_abs, mp, label, store.dir, adapter, debug)
        else:
            serve = _mount_server(repo_abs, mp, resolved, label, adapter, debug)
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
    click.echo(f'mounted {label}{what} of {repo_abs} at {mp} (pid {started.pid}, log {started.log_path})')


def _mount_info(repo: str, log_path: Path, mode: str, **extra: Any) -> dict[str, Any]:
    return {
        'pid': os.getpid(),
        'repo': repo,
        'mode': mode,
        'log': str(log_path),
        'started': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        **extra,
    }


def _mount_server(
    repo: str, mountpoint: str, resolved: Any, label: str, adapter: str, debug: bool
) -> Callable[..., None]:
    """The function a read-only mount's daemon runs: open the repository, build the view, serve it."""

    def serve(on_ready: Callable[[], None], log_path: Path) -> None:
        from hangarfs.engine.store import RepoStore
        from hangarfs.fs import daemon
        from hangarfs.fs.view import InfoView

        store = RepoStore(repo)
        commit = None if resolved is None else resolved.commit
        branch = None if resolved is None else resolved.branch
        view = daemon.read_only_view(store, commit, branch, label, adapter)
        info = _mount_info(repo, log_path, 'read-only', adapter=adapter)
        daemon.serve_read_only(InfoView(view, info), mountpoint, on_ready, adapter, debug)

    return serve


def _staging_server(
    repo: str, mountpoint: str, branch: str, store_dir: Path, adapter: str, debug: bool
) -> Callable[..., None]:
    """The function a staging mount's daemon runs: hold the writer, serve the view and the socket."""

    def serve(on_ready: Callable[[], None], log_path: Path) -> None:
        from hangarfs.engine.checkout import WriterCheckout
        from hangarfs.engine.store import RepoStore
        from hangarfs.fs import control, daemon
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
        server = control.ControlServer(sock, _control_handler(view))
        try:
            info = _mount_info(repo, log_path, 'staging', socket=sock, adapter=adapter)
            daemon.serve_staging(InfoView(view, info), view, mountpoint, on_ready, adapter, debug)
        finally:
            server.close()
            co.close()

    return serve


def _control_handler(view: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
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


if __name__ == '__main__':
    main()
