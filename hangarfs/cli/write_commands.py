"""Commands that change the staging area: commit, column, meta, import, reset, checkout; and export.

Each change is a request to the writer (``app.writer_request``): made by a writer checkout of this
process, or by the staging mount's daemon when a mount holds the writer, so they all work while the
repository is mounted with ``--write``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from hangarfs.cli.app import (
    Context,
    RequestFailed,
    fail,
    main,
    pass_ctx,
    progress,
    reported,
    writer,
    writer_branch,
    writer_request,
)


@main.command()
@click.option('-m', '--message', required=True, help='The commit message.')
@pass_ctx
def commit(ctx: Context, message: str) -> None:
    """Commit the staged changes on the writer's branch; prints the commit digest.

    When a staging mount holds the writer, its daemon makes the commit (the mount stays up)."""
    with reported():
        reply = writer_request(ctx.repo(), {'op': 'commit', 'message': message})
    click.echo(reply['commit'])


# ------------------------------------------------------------------------------------------- columns


@main.group()
def column() -> None:
    """Create, list, rename and delete columns."""


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
    request = {
        'op': 'column_create',
        'name': name,
        'dtype': dtype,
        'shape': list(shape),
        'variable_shape': variable_shape,
        'nested': nested,
        'backend': backend,
        'backend_options': backend_options,
    }
    with reported():
        reply = writer_request(ctx.repo(), request)
    click.echo(f'staged column {name} ({reply["description"]}, backend {reply["backend"]})')


@column.command('list')
@click.argument('ref', required=False)
@pass_ctx
def column_list(ctx: Context, ref: str | None) -> None:
    """List the columns at REF, or without REF those of the staging area (staged ones marked)."""
    from hangarfs.engine.staging_status import staged_columns

    with reported():
        rows = staged_columns(ctx.repo().store, ref)
    for c in rows:
        what = f'{c.dtype} {c.shape}' if c.kind == 'ndarray' else c.kind
        mark = f'  ({c.staged})' if c.staged else ''
        click.echo(f'{c.name:<24} {c.samples:>10}  {what}  {c.layout}  {c.backend}{mark}')
    if not rows:
        click.echo('no columns')


@column.command('delete')
@click.argument('name')
@pass_ctx
def column_delete(ctx: Context, name: str) -> None:
    """Stage the removal of column NAME and all its samples."""
    with reported():
        writer_request(ctx.repo(), {'op': 'column_delete', 'name': name})
    click.echo(f'staged: column {name} removed')


@column.command('rename')
@click.argument('old')
@click.argument('new')
@pass_ctx
def column_rename(ctx: Context, old: str, new: str) -> None:
    """Stage column OLD under the name NEW (no sample data is copied)."""
    with reported():
        writer_request(ctx.repo(), {'op': 'column_rename', 'old': old, 'new': new})
    click.echo(f'staged: column {old} renamed to {new}')


# ------------------------------------------------------------------------------------------ metadata


@main.group()
def meta() -> None:
    """Read and stage metadata (str -> str pairs versioned with the samples)."""


def _metadata_at(ctx: Context, ref: str | None) -> dict[str, str]:
    """The metadata of REF, or of the staging area without REF."""
    from hangarfs.engine.staging_status import staged_metadata

    return staged_metadata(ctx.repo().store, ref)


@meta.command('list')
@click.argument('ref', required=False)
@pass_ctx
def meta_list(ctx: Context, ref: str | None) -> None:
    """Print KEY<TAB>VALUE (first line) for every key at REF (default: the staging area)."""
    with reported():
        items = _metadata_at(ctx, ref)
    for key, value in items.items():
        first = value.splitlines()[0] if value else ''
        click.echo(f'{key}\t{first}')


@meta.command('get')
@click.argument('key')
@click.argument('ref', required=False)
@pass_ctx
def meta_get(ctx: Context, key: str, ref: str | None) -> None:
    """Print the value of KEY at REF (default: the staging area)."""
    with reported():
        items = _metadata_at(ctx, ref)
        if key not in items:
            fail(
                f'no metadata key {key!r}'
                + (f' at {ref}' if ref else '')
                + '; `hangarfs meta list` lists them'
            )
    click.echo(items[key])


@meta.command('set')
@click.argument('key')
@click.argument('value')
@pass_ctx
def meta_set(ctx: Context, key: str, value: str) -> None:
    """Stage KEY = VALUE."""
    with reported():
        writer_request(ctx.repo(), {'op': 'meta_set', 'key': key, 'value': value})
    click.echo(f'staged: metadata {key}')


@meta.command('delete')
@click.argument('key')
@pass_ctx
def meta_delete(ctx: Context, key: str) -> None:
    """Stage the removal of KEY."""
    with reported():
        writer_request(ctx.repo(), {'op': 'meta_delete', 'key': key})
    click.echo(f'staged: metadata {key} removed')


# ---------------------------------------------------------------------------------- import and export


@main.command('import')
@click.argument('column_name', metavar='COLUMN')
@click.argument('paths', nargs=-1, required=True, type=click.Path(exists=True))
@click.option('-m', '--message', help='Also commit, with this message.')
@pass_ctx
def import_(ctx: Context, column_name: str, paths: tuple[str, ...], message: str | None) -> None:
    """Stage .npy (.txt, .bin) files into COLUMN; keys from file names (5.npy -> 5, @5.npy -> '5')."""
    request = {
        'op': 'import',
        'column': column_name,
        'paths': [os.path.abspath(p) for p in paths],  # a staging mount's daemon reads them
        'message': message,
    }
    with reported():
        repo = ctx.repo()
        update, close = progress(None, f'import {column_name}')
        try:
            reply = writer_request(repo, request, update)
        except RequestFailed as err:
            if err.kind == 'NothingToCommit':
                branch = writer_branch(repo)
                fail(f'nothing to commit: the files hold what branch {branch!r} already has')
            raise
        finally:
            close()
    click.echo(
        f'staged {reply["samples"]} sample(s) ({reply["bytes"] / 1e6:.1f} MB) into column {column_name}'
    )
    if 'commit' in reply:
        click.echo(reply['commit'])


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


# ----------------------------------------------------------------------------------- reset, checkout


@main.command('reset')
@click.option('--hard', is_flag=True, help='Discard every staged change (there is no undo).')
@pass_ctx
def reset_cmd(ctx: Context, hard: bool) -> None:
    """Return the staging area to the head of the writer's branch (also while a staging mount is up)."""
    with reported():
        try:
            reply = writer_request(ctx.repo(), {'op': 'reset', 'hard': hard})
        except RequestFailed as err:
            if err.kind == 'StagingDirty':
                fail('the staging area holds changes; `hangarfs reset --hard` discards them for good')
            raise
    click.echo(f'staging area reset to {reply["branch"]} at {reply["head"][:12] or "(no commits yet)"}')


@main.command('checkout')
@click.argument('branch_name', metavar='BRANCH')
@pass_ctx
def checkout_cmd(ctx: Context, branch_name: str) -> None:
    """Move the writer (and the staging area) to BRANCH; refused while changes are staged."""
    with reported():
        repo = ctx.repo()
        if repo.store.refs.branch_head(branch_name) is None:
            fail(
                f'no branch named {branch_name!r}: the writer works on a branch (make one with '
                f'`hangarfs branch create {branch_name} [BASE]`); to read a tag or commit, mount it '
                'with --ref'
            )
        with writer(repo, branch_name) as co:
            head = co.commit_hash
    click.echo(f'the writer is on branch {branch_name}, at {head[:12] or "(no commits yet)"}')
