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
from hangarfs.errors import HangarfsError, RepositoryExists, RepositoryNotFound


class CliError(click.ClickException):
    """A failure reported as one line on stderr with exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f'hangarfs: error: {self.format_message()}', err=True)


def fail(message: str) -> NoReturn:
    raise CliError(message)


class RequestFailed(CliError):
    """The writer (this process's, or a staging mount's daemon) refused a request."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind  # the name of the error class


@contextmanager
def reported() -> Iterator[None]:
    """Turn expected errors into one-line CLI errors (tracebacks are for bugs only)."""
    try:
        yield
    except (click.ClickException, BrokenPipeError):
        raise
    except RepositoryNotFound as err:
        fail(f'no hangarfs repository at {err.path}: create one with `hangarfs -C {err.path} init`')
    except RepositoryExists as err:
        fail(
            f'a hangarfs repository already exists at {err.path}; `hangarfs init --remove-old` replaces it '
            '(deleting all its history and data)'
        )
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


def progress(total: int | None, label: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A tqdm progress bar on stderr when it is a terminal (or forced), else nothing."""
    if not sys.stderr.isatty() and not os.environ.get('HANGARFS_PROGRESS'):
        return (lambda n: None), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit='sample', file=sys.stderr)
    return bar.update, bar.close


class ByteProgress:
    """Progress bars in bytes, with the rate, on stderr when it is a terminal (or HANGARFS_PROGRESS=1):
    what the engine's remote operations report to (``hangarfs.engine.remote.progress.Progress``)."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty() or bool(os.environ.get('HANGARFS_PROGRESS'))
        self._bar: Any = None

    def begin(self, label: str, total: int | None) -> None:
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=label, unit='B', unit_scale=True, unit_divisor=1024, file=sys.stderr
            )

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.update(nbytes)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


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


def lock_holder(repo: Repository) -> dict[str, Any] | None:
    """Who holds the writer lock (None: nobody)."""
    from hangarfs.engine.lock import WriterLock

    return WriterLock(repo.store.lock_path, repo.path).is_locked_by_other()


def writer_request(
    repo: Repository, request: dict[str, Any], progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Make a change that needs the writer: through the staging mount's daemon when one holds the
    writer, else with a writer checkout of our own (see ``hangarfs.fs.writer_ops``)."""
    from hangarfs.fs import control, writer_ops

    holder = lock_holder(repo)
    if holder is not None and holder.get('socket'):
        try:
            reply = control.request(str(holder['socket']), request)
        except OSError as err:
            where = holder.get('mountpoint')
            fail(f'the staging mount at {where} holds the writer but does not answer: {err}')
        if not reply.get('ok'):
            raise RequestFailed(str(reply.get('error', 'the staging mount refused')), str(reply.get('type')))
        return reply
    try:
        with writer(repo) as co:
            return writer_ops.apply(co, request, progress=progress)
    except HangarfsError as err:
        if isinstance(err, (RepositoryNotFound, RepositoryExists)):
            raise
        raise RequestFailed(str(err).splitlines()[0], type(err).__name__) from err


class HangarfsGroup(click.Group):
    """The command group; output cut off by a closed pipe (``| head``) ends the command quietly."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _quiet_exit()

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = super().main(*args, **kwargs)
        except SystemExit:
            _flush_stdout()
            raise
        _flush_stdout()
        return result


def _flush_stdout() -> None:
    """Flush now, so that a reader gone away is noticed here and not at interpreter exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_exit()
    except (OSError, ValueError):
        pass


def _quiet_exit() -> NoReturn:
    """Exit as a tool killed by SIGPIPE does: no message, status 141."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os._exit(128 + 13)


def _set_path(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(Context).path = os.path.abspath(value)


def directory_option() -> click.Option:
    """``-C PATH`` after a subcommand (``hangarfs status -C repo``), as users copy it."""
    return click.Option(
        ['-C', 'directory'],
        metavar='PATH',
        expose_value=False,
        is_eager=True,
        callback=_set_path,
        help='Run as if started in PATH (the repository).',
    )


def accept_directory_everywhere(group: click.Group) -> None:
    """Give every command below ``group`` the ``-C PATH`` option."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            accept_directory_everywhere(command)
        elif not any('-C' in p.opts for p in command.params if isinstance(p, click.Option)):
            command.params.append(directory_option())


@click.group(cls=HangarfsGroup, context_settings={'help_option_names': ['-h', '--help']})
@click.option('-C', 'path', default='.', metavar='PATH', help='Run as if started in PATH (the repository).')
@click.version_option(package_name='hangarfs')
@click.pass_context
def main(ctx: click.Context, path: str) -> None:
    """Version control for tensor data, with a filesystem front end.

    Shell completion: eval "$(_HANGARFS_COMPLETE=bash_source hangarfs)" in ~/.bashrc
    (zsh_source, fish_source for zsh and fish)."""
    ctx.obj = Context(path)
