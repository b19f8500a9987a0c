"""Commands that stage and commit: commit, column create/list, import, export, reset, checkout."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hangarfs.cli.app import Context, fail, main, pass_ctx, progress, reported, writer
from hangarfs.engine.repository import Repository
from hangarfs.errors import StagingDirty


def _lock_holder(repo: Repository) -> dict[str, object] | None:
    from hangarfs.engine.lock import WriterLock

    return WriterLock(repo.store.lock_path, repo.path).is_locked_by_other()


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
                reply = control.request(str(holder['socket']), {'op': 'commit', 'message': message})
            except OSError as err:
                where = holder.get('mountpoint')
                fail(f'the staging mount at {where} holds the writer but does not answer: {err}')
            if not reply.get('ok'):
                fail(str(reply.get('error', 'the staging mount refused to commit')))
            digest = reply['commit']
        else:
            with writer(repo) as co:
                digest = co.commit(message)
    click.echo(digest)


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
        with writer(repo) as co:
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
        with writer(repo) as co:
            if column_name not in co.columns:
                hint = f'`hangarfs column create {column_name} DTYPE SHAPE...`'
                fail(f'no column named {column_name!r}; create it with {hint}')
            col = co.columns[column_name]
            if col.column_layout == 'nested':
                fail(f'column {column_name!r} is nested; import into it through the staging mount')
            files = collect_files(paths, col.column_type)
            update, close = progress(len(files), f'import {column_name}')
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
            update, close = progress(len(col), f'export {column_name}')
            try:
                result = export_column(col, Path(output), update)
            finally:
                close()
        finally:
            co.close()
    click.echo(f'wrote {result.samples} file(s) ({result.bytes / 1e6:.1f} MB) to {output}')


@main.command('reset')
@click.option('--hard', is_flag=True, help='Discard every staged change (there is no undo).')
@pass_ctx
def reset_cmd(ctx: Context, hard: bool) -> None:
    """Return the staging area to the head of the writer's branch."""
    with reported():
        repo = ctx.repo()
        with writer(repo) as co:
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
        with writer(repo, branch_name) as co:
            head = co.commit_hash
    click.echo(f'the writer is on branch {branch_name}, at {head[:12] or "(no commits yet)"}')
