"""Changes that need the writer, as requests: made by the CLI's own writer checkout, or by the daemon
of the staging mount that holds the writer (over its control socket), with the same code and results.

A request is a JSON object ``{"op": NAME, ...arguments}``; :func:`apply` makes the change with a
writer checkout and returns a JSON object (the reply's fields). With a staging view, the change is
made under the view's lock and the view is told, so the mount shows it at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hangarfs.engine.column_ops import rename_column
from hangarfs.errors import InvalidKey, NothingToCommit, StagingDirty
from hangarfs.fs.transfer import collect_files, import_files

Progress = Callable[[int], None] | None


def apply(co: Any, request: dict[str, Any], view: Any = None, progress: Progress = None) -> dict[str, Any]:
    """Make the change ``request`` asks for with writer checkout ``co`` (see the module doc)."""
    op = request.get('op')
    handler = OPS.get(str(op))
    if handler is None:
        raise ValueError(f'unknown request {op!r}; expected one of {", ".join(sorted(OPS))}')
    args = {k: v for k, v in request.items() if k != 'op'}
    if view is None:
        return handler(co, progress=progress, **args)
    with view.lock:
        try:
            return handler(co, progress=progress, view=view, **args)
        finally:
            view.writer_changed()


def commit(co: Any, message: str, view: Any = None, progress: Progress = None) -> dict[str, Any]:
    digest = view.commit(message) if view is not None else co.commit(message)
    return {'commit': digest}


def reset(co: Any, hard: bool = False, view: Any = None, progress: Progress = None) -> dict[str, Any]:
    if not hard and co.diff.status() == 'DIRTY':
        raise StagingDirty('the staging area holds changes; `hangarfs reset --hard` discards them for good')
    head = co.reset_staging_area(force=True)
    if view is not None:
        view.was_reset()
    return {'branch': co.branch_name, 'head': head}


def import_(
    co: Any,
    column: str,
    paths: list[str],
    message: str | None = None,
    view: Any = None,
    progress: Progress = None,
) -> dict[str, Any]:
    if column not in co.columns:
        raise InvalidKey(
            f'no column named {column!r}; create it with `hangarfs column create {column} DTYPE SHAPE...`'
        )
    col = co.columns[column]
    if col.column_layout == 'nested':
        raise InvalidKey(f'column {column!r} is nested; import into it through the staging mount')
    files = collect_files([Path(p) for p in paths], col.column_type)
    result = import_files(col, files, progress)
    if view is not None:
        view.date_staged_samples()
    reply: dict[str, Any] = {'samples': result.samples, 'bytes': result.bytes}
    if message:
        if co.diff.status() == 'CLEAN':
            raise NothingToCommit(co.branch_name or '')
        reply['commit'] = view.commit(message) if view is not None else co.commit(message)
    return reply


def column_create(
    co: Any,
    name: str,
    dtype: str,
    shape: list[int] | None = None,
    variable_shape: bool = False,
    nested: bool = False,
    backend: str | None = None,
    backend_options: dict[str, Any] | str | None = None,
    view: Any = None,
    progress: Progress = None,
) -> dict[str, Any]:
    options = json.loads(backend_options) if isinstance(backend_options, str) else backend_options
    if dtype in ('str', 'bytes'):
        if shape:
            raise ValueError(f'{dtype} columns take no shape')
        add = co.add_str_column if dtype == 'str' else co.add_bytes_column
        col = add(name, nested, backend=backend, backend_options=options)
    else:
        if not shape and not variable_shape:
            raise ValueError('give the sample shape after the dtype, e.g. `column create images uint8 28 28`')
        col = co.add_ndarray_column(
            name,
            shape=tuple(shape or ()),
            dtype=dtype,
            variable_shape=variable_shape,
            contains_subsamples=nested,
            backend=backend,
            backend_options=options,
        )
    what = col.column_type + (f' {col.dtype} {col.shape}' if col.column_type == 'ndarray' else '')
    return {'column': name, 'description': what, 'backend': col.backend_name}


def column_delete(co: Any, name: str, view: Any = None, progress: Progress = None) -> dict[str, Any]:
    co.columns.delete(name)
    return {'column': name}


def column_rename(co: Any, old: str, new: str, view: Any = None, progress: Progress = None) -> dict[str, Any]:
    rename_column(co, old, new)
    return {'column': new}


def meta_set(co: Any, key: str, value: str, view: Any = None, progress: Progress = None) -> dict[str, Any]:
    co.metadata[key] = value
    return {'key': key}


def meta_delete(co: Any, key: str, view: Any = None, progress: Progress = None) -> dict[str, Any]:
    del co.metadata[key]
    return {'key': key}


OPS: dict[str, Callable[..., dict[str, Any]]] = {
    'commit': commit,
    'reset': reset,
    'import': import_,
    'column_create': column_create,
    'column_delete': column_delete,
    'column_rename': column_rename,
    'meta_set': meta_set,
    'meta_delete': meta_delete,
}
