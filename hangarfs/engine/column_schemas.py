"""The schema of a new column: what ``add_ndarray_column`` / ``add_str_column`` / ``add_bytes_column``
check and decide (dtype and shape, layout, which backend, its options, inline values)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hangarfs.backends import BACKEND_CLASSES, backend_code
from hangarfs.engine.records import ColumnSchema
from hangarfs.engine.samples import INLINE_VALUE_BYTES, normalize_dtype
from hangarfs.engine.validate import check_flag

TINY_ARRAY_BYTES = 64  # arrays up to this size default to the lmdb backend (inline)
SMALL_ARRAY_BYTES = 512  # fixed-shape arrays up to this size default to the numpy backend
HETEROGENEOUS_NBYTES = 4096  # what a heterogeneous column's backend options are chosen for


def default_backend_for(kind: str, nbytes: int, variable_shape: bool, configured: str) -> str:
    """The backend a new column gets when none is named."""
    if configured:
        return configured
    if kind != 'ndarray' or nbytes <= TINY_ARRAY_BYTES:
        return '30'
    if not variable_shape and nbytes <= SMALL_ARRAY_BYTES:
        return '10'
    return '00'


def make_schema(
    *,
    kind: str,
    nested: bool,
    dtype: str | None,
    shape: tuple[int, ...] | None,
    variable: bool,
    nbytes: int,
    backend: str | None,
    options: Mapping[str, Any] | None,
    default_backend: str,
) -> ColumnSchema:
    """A complete schema; ``default_backend`` is the repository's configured default ('' for none)."""
    nested = check_flag('contains_subsamples', nested)
    variable = check_flag('variable_shape', variable)
    code = (
        backend_code(backend)
        if backend is not None
        else default_backend_for(kind, nbytes, variable, default_backend)
    )
    cls = BACKEND_CLASSES[code]
    opts = cls.normalize_options(options) if options else cls.default_options(nbytes)
    inline = kind == 'ndarray' and not variable and nbytes <= INLINE_VALUE_BYTES
    return ColumnSchema(kind, 'nested' if nested else 'flat', dtype, shape, variable, code, opts, inline)


def backend_choice(backend: str, options: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """A backend named by name or code, and ``options`` for it, as a schema records them (code,
    normalized options); BackendError says what is wrong with either."""
    code = backend_code(backend)
    return code, BACKEND_CLASSES[code].normalize_options(options)


def ndarray_schema(
    name: str,
    *,
    shape: int | Sequence[int] | None,
    dtype: Any,
    prototype: np.ndarray | None,
    variable_shape: bool,
    contains_subsamples: bool,
    backend: str | None,
    backend_options: Mapping[str, Any] | None,
    heterogeneous: bool,
    default_backend: str,
) -> ColumnSchema:
    """The schema of a new ndarray column, from ``add_ndarray_column``'s arguments (checked)."""
    if heterogeneous:
        if shape is not None or dtype is not None or prototype is not None:
            raise ValueError(
                f'column {name!r}: a heterogeneous column takes no shape, dtype or prototype '
                '(each sample has its own)'
            )
        return make_schema(
            kind='ndarray',
            nested=contains_subsamples,
            dtype=None,
            shape=None,
            variable=True,
            nbytes=HETEROGENEOUS_NBYTES,
            backend=backend,
            options=backend_options,
            default_backend=default_backend,
        )
    if prototype is not None:
        if not isinstance(prototype, np.ndarray):
            raise TypeError(f'prototype must be a numpy.ndarray, got {type(prototype).__name__}')
        if shape is not None or dtype is not None:
            raise ValueError(
                f'column {name!r}: give prototype= (an example array) or shape= and dtype=, not both'
            )
        shape, dtype = prototype.shape, prototype.dtype
    if shape is None or dtype is None:
        raise ValueError(f'column {name!r}: give shape= and dtype=, or prototype= (an example array)')
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        dims = tuple(int(s) for s in shape)
    except (TypeError, ValueError) as err:
        raise ValueError(f'column {name!r}: expected shape a tuple of ints, got {shape!r} instead') from err
    if any(s < 0 for s in dims):
        raise ValueError(f'column {name!r}: shape dimensions must be >= 0, got {dims}')
    try:
        dt = normalize_dtype(dtype)
    except ValueError as err:
        raise ValueError(f'column {name!r}: {err}') from err
    return make_schema(
        kind='ndarray',
        nested=contains_subsamples,
        dtype=dt.str,
        shape=dims,
        variable=variable_shape,
        nbytes=int(np.prod(dims, dtype=np.int64)) * dt.itemsize,
        backend=backend,
        options=backend_options,
        default_backend=default_backend,
    )
