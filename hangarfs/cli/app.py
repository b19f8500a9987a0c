"""The ``hangarfs`` command group and what every command shares: the repository to work on, one-line
errors, progress bars.

Commands only parse and print: the engine (or the fs layer, for files and mounts) does the work.
Exit status is 0 on success; otherwise 1 with a one-line reason on stderr (2 for usage errors).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from hangarfs.engine.repository import DEFAULT_BRANCH, Repository
from hangarfs.engine.staging import StagingArea
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


def progress(total: int, label: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A tqdm progress bar on stderr when it is a terminal (or forced), else nothing."""
    if not sys.stderr.isatty() and not os.environ.get('HANGARFS_PROGRESS'):
        return (lambda n: None), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit='sample', file=sys.stderr)
    return bar.update, bar.close


def writer_branch(repo: Repository) -> str:
    """The branch the writer (and the staging area) is on."""
    return StagingArea(repo.store).info().branch or DEFAULT_BRANCH


@contextmanager
def writer(repo: Repository, branch: str | None = None) -> Iterator[Any]:
    """The writer checkout, on ``branch`` or the staging area's branch; closed at the end."""
    co = repo.checkout(write=True, branch=branch or writer_branch(repo))
    try:
        yield co
    finally:
        co.close()


@click.group(context_settings={'help_option_names': ['-h', '--help']})
@click.option('-C', 'path', default='.', metavar='PATH', help='Run as if started in PATH (the repository).')
@click.version_option(package_name='hangarfs')
@click.pass_context
def main(ctx: click.Context, path: str) -> None:
    """Version control for tensor data, with a filesystem front end."""
    ctx.obj = Context(path)
