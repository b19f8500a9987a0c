"""The ``stock`` command: init, commit, list, checkout-branch (thin: everything is in StockRoom)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from hangarfs.errors import HangarfsError
from hangarfs.stockroom.core import StockRoom
from hangarfs.stockroom.data import MODEL_COLUMN
from hangarfs.stockroom.init import init_repo
from hangarfs.stockroom.pointer import GITIGNORE_ENTRY, POINTER_FILE


def _fail(message: str) -> NoReturn:
    click.echo(f'stock: {message}', err=True)
    sys.exit(1)


@contextmanager
def _reported() -> Iterator[None]:
    """Errors a user can act on become one line on stderr and exit status 1."""
    try:
        yield
    except (HangarfsError, KeyError, ValueError, TypeError, PermissionError, FileNotFoundError) as err:
        text = err.args[0] if isinstance(err, KeyError) and err.args else err
        _fail(str(text))


@click.group(context_settings={'help_option_names': ['-h', '--help']})
@click.version_option(package_name='hangarfs')
def main() -> None:
    """Data, models and experiment tags next to your code, versioned by hangarfs.

    head.stock (tracked by git) names the hangarfs commit this version of the code reads."""


@main.command()
@click.option('--name', help='Author name for commits (default: git config user.name).')
@click.option('--email', help='Author email (default: git config user.email).')
@click.option('--overwrite', is_flag=True, help='Replace an existing repository (deletes all its history).')
def init(name: str | None, email: str | None, overwrite: bool) -> None:
    """Make the current directory a stock: a hangarfs repository, head.stock and a .gitignore entry."""
    with _reported():
        result = init_repo(name, email, overwrite)
    click.echo(
        f'{"Created" if result.created_repository else "Using"} the hangarfs repository in {result.root}'
    )
    click.echo(f'{POINTER_FILE}: {"created" if result.created_pointer else "kept"} (commit it with git)')
    if result.added_gitignore:
        click.echo(f'.gitignore: added {GITIGNORE_ENTRY}')


@main.command()
@click.option(
    '-m', '--message', multiple=True, required=True, help='The commit message (several: one paragraph each).'
)
def commit(message: tuple[str, ...]) -> None:
    """Commit what is staged, with the tags set since the last commit; write the digest to head.stock."""
    with _reported():
        stock = StockRoom()
        tags = stock.tag.pending()
        digest = stock.commit('\n\n'.join(message))
    click.echo(digest)
    if tags:
        click.echo(f'tags: {json.dumps(tags, sort_keys=True)}', err=True)
    click.echo(
        f'{POINTER_FILE} now names it: `git add {POINTER_FILE}` and commit your code with it', err=True
    )


@main.command('list')
@click.option('--data', 'show', flag_value='data', help='Only the data columns.')
@click.option('--model', 'show', flag_value='model', help='Only the models.')
@click.option('--tag', 'show', flag_value='tag', help='Only the tags.')
def list_(show: str | None) -> None:
    """What the commit in head.stock holds (with what is staged on top of it)."""
    with _reported():
        stock = StockRoom()
        pointer = stock.pointer()
        if show is None:
            click.echo(
                f'# {stock.path}: branch {pointer.branch}, commit {pointer.commit[:12] or "(none yet)"}'
            )
        with stock.optimize():
            if show in (None, 'data'):
                _list_data(stock, headed=show is None)
            if show in (None, 'model'):
                _list_models(stock, headed=show is None)
            if show in (None, 'tag'):
                _list_tags(stock, headed=show is None)


def _list_data(stock: StockRoom, headed: bool) -> None:
    if headed:
        click.echo('data:')
    with stock._reading() as co:
        for name in stock.data:
            assert co is not None
            col = co.columns[name]
            if col.column_type == 'ndarray':
                dtype = col.dtype.name if col.dtype is not None else 'any dtype'  # type: ignore[union-attr]
                what = f'{dtype} {tuple(col.shape) if col.shape is not None else ""}'.strip()
                what += ' variable' if col.variable_shape else ''
            else:
                what = col.column_type
            click.echo(f'{"  " if headed else ""}{name}\t{len(col)} samples\t{what}')


def _list_models(stock: StockRoom, headed: bool) -> None:
    if headed:
        click.echo(f'model:  (column {MODEL_COLUMN}/<name>/<parameter>)')
    for name in stock.model:
        info = stock.model.info(name)
        version = f' {info["framework_version"]}' if info.get('framework_version') else ''
        click.echo(
            f'{"  " if headed else ""}{name}\t{info["framework"]}{version}\t{len(info["params"])} parameters'
        )


def _list_tags(stock: StockRoom, headed: bool) -> None:
    if headed:
        click.echo('tag:')
    committed, pending = stock.tag.committed(), stock.tag.pending()
    for key in sorted({**committed, **pending}):
        value = pending.get(key, committed.get(key))
        note = '\t(next commit)' if key in pending else ''
        click.echo(f'{"  " if headed else ""}{key}\t{json.dumps(value)}\t{type(value).__name__}{note}')


@main.command('checkout-branch')
@click.argument('name')
def checkout_branch(name: str) -> None:
    """Point head.stock at branch NAME (created at the commit head.stock names, if new)."""
    with _reported():
        commit = StockRoom().checkout_branch(name)
    click.echo(f'{POINTER_FILE}: branch {name} at {commit[:12]}')


if __name__ == '__main__':  # pragma: no cover
    main()
