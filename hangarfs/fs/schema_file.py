"""A ``.schema.json`` written into the staging mount: what it asks for, and how it meets the column.

Written into a new, empty column (made by ``mkdir``) it sets the column's schema. Written over an
existing column's schema, as ``rsync -a`` or ``cp -r`` of a mounted column does, it must agree with
it: the same kind, layout, dtype and shape is accepted as it is (the informational fields, such as the
sample count, are ignored); another backend changes the column's backend for future writes; a column
made in this staging area may be given a wider schema its samples still fit (``cp -r`` may copy
samples before the schema); anything else is refused with what differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from hangarfs.engine.column_schemas import backend_choice
from hangarfs.engine.columns import _ColumnBase
from hangarfs.engine.nested import NestedColumn
from hangarfs.engine.writer_checkout import WriterCheckout
from hangarfs.errors import HangarfsError
from hangarfs.fs.npy import NpyFormatError


@dataclass(frozen=True)
class SchemaSpec:
    """What a written ``.schema.json`` asks for."""

    kind: str
    nested: bool
    dtype: str | None  # numpy dtype name, for arrays
    shape: tuple[int, ...] | None
    variable_shape: bool
    backend: str | None  # a backend code, when named
    backend_options: dict[str, Any] | None

    def add_to(self, checkout: WriterCheckout, name: str) -> _ColumnBase:
        """Make column ``name`` with this schema in a writer checkout."""
        if self.kind == 'ndarray':
            return checkout.add_ndarray_column(
                name,
                shape=self.shape,
                dtype=self.dtype,
                variable_shape=self.variable_shape,
                contains_subsamples=self.nested,
                backend=self.backend,
                backend_options=self.backend_options,
            )
        add = checkout.add_str_column if self.kind == 'str' else checkout.add_bytes_column
        return add(name, self.nested, backend=self.backend, backend_options=self.backend_options)


def parse_schema_file(data: bytes, path: str) -> SchemaSpec:
    """The spec a written schema file holds, or NpyFormatError saying what is wrong with it."""
    try:
        spec = json.loads(data.decode('utf-8'))
        if not isinstance(spec, dict):
            raise ValueError('expected a JSON object')
        kind = spec.get('kind', 'ndarray')
        if kind not in ('ndarray', 'str', 'bytes'):
            raise ValueError(f"expected kind 'ndarray', 'str' or 'bytes', got {kind!r} instead")
        layout = spec.get('layout', 'flat')
        if layout not in ('flat', 'nested'):
            raise ValueError(f"expected layout 'flat' or 'nested', got {layout!r} instead")
        dtype = shape = None
        if kind == 'ndarray':
            if spec.get('dtype') is None or spec.get('shape') is None:
                raise ValueError('an ndarray column needs "dtype" and "shape"')
            dtype = np.dtype(spec['dtype']).name
            shape = tuple(int(s) for s in spec['shape'])
        backend = spec.get('backend_code') or spec.get('backend')
        options = spec.get('backend_options') or None
        return SchemaSpec(
            kind,
            layout == 'nested',
            dtype,
            shape,
            bool(spec.get('variable_shape', False)),
            backend_choice(backend, None)[0] if backend else None,
            dict(options) if options else None,
        )
    except (UnicodeDecodeError, ValueError, TypeError, HangarfsError) as err:
        raise NpyFormatError(f'{path}: not a column schema ({err})') from err


def layout_difference(spec: SchemaSpec, col: _ColumnBase) -> str:
    """What differs in kind, layout, dtype or shape between ``spec`` and ``col`` ('' when nothing)."""
    diffs = []
    if spec.kind != col.column_type:
        diffs.append(f'kind {col.column_type} vs {spec.kind}')
    if spec.nested != isinstance(col, NestedColumn):
        diffs.append(f'layout {col.column_layout} vs {"nested" if spec.nested else "flat"}')
    if spec.kind == col.column_type == 'ndarray':
        if np.dtype(spec.dtype) != np.dtype(col.dtype):
            diffs.append(f'dtype {np.dtype(col.dtype).name} vs {spec.dtype}')
        if spec.shape != col.shape or spec.variable_shape != col.variable_shape:
            diffs.append(
                f'shape {_shape(col.shape, col.variable_shape)} vs {_shape(spec.shape, spec.variable_shape)}'
            )
    return ', '.join(diffs)


def backend_difference(spec: SchemaSpec, col: _ColumnBase) -> bool:
    """True when the spec names another backend (or other options) than the column has."""
    if spec.backend is None or (spec.backend == col.backend and spec.backend_options is None):
        return False
    if spec.backend != col.backend:
        return True
    _, options = backend_choice(spec.backend, spec.backend_options)
    return bool(options != col.backend_options)


def fits(spec: SchemaSpec, value: Any) -> bool:
    """True when a sample value of a column could be stored under ``spec`` unchanged."""
    if spec.kind != 'ndarray':
        return True
    assert spec.shape is not None
    if not isinstance(value, np.ndarray) or value.dtype != np.dtype(spec.dtype):
        return False
    if spec.variable_shape:
        fits: bool = value.ndim == len(spec.shape) and all(a <= b for a, b in zip(value.shape, spec.shape))
        return fits
    same: bool = value.shape == spec.shape
    return same


def describe_spec(spec: SchemaSpec) -> str:
    """'ndarray uint8 (28, 28), flat' and the like."""
    what = (
        spec.kind
        if spec.kind != 'ndarray'
        else f'ndarray {spec.dtype} {_shape(spec.shape, spec.variable_shape)}'
    )
    return f'{what}, {"nested" if spec.nested else "flat"}'


def describe_column(col: _ColumnBase) -> str:
    if col.column_type != 'ndarray':
        return f'{col.column_type}, {col.column_layout}'
    dtype = np.dtype(col.dtype).name
    return f'ndarray {dtype} {_shape(col.shape, col.variable_shape)}, {col.column_layout}'


def _shape(shape: tuple[int, ...] | None, variable: bool) -> str:
    return f'{shape}{" (variable, at most)" if variable else ""}'
