"""Writing a column's ``.schema.json`` through the staging view (see ``schema_file.py`` for the rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hangarfs.engine.columns import _ColumnBase
from hangarfs.engine.nested import NestedColumn
from hangarfs.errors import BackendError, SchemaMismatch
from hangarfs.fs.npy import NpyFormatError
from hangarfs.fs.schema_file import (
    SchemaSpec,
    backend_difference,
    describe_column,
    describe_spec,
    fits,
    layout_difference,
)


class SchemaWriter:
    """The staging view's handling of written schema files (a part of :class:`StagingView`)."""

    co: Any
    _columns: dict[str, _ColumnBase] | None
    _pending_columns: set[str]
    _hidden_schemas: set[str]
    _base_columns: frozenset[str]

    if TYPE_CHECKING:  # provided by StagingView

        def _column_map(self) -> dict[str, _ColumnBase]: ...

    def _write_schema(self, column: str, spec: SchemaSpec, path: str) -> None:
        """Set a new column's schema from ``spec``, or check an existing column against it."""
        if column in self._pending_columns:
            try:
                spec.add_to(self.co, column)
            except (TypeError, ValueError, BackendError) as err:
                raise NpyFormatError(f'{path}: {err}') from err
            self._pending_columns.discard(column)
            self._columns = None
            return
        col = self._column_map().get(column)
        if col is None:
            raise FileNotFoundError(2, f'no column {column!r}', path)
        difference = layout_difference(spec, col)
        if not difference:
            if backend_difference(spec, col):
                col.change_backend(spec.backend or col.backend, spec.backend_options)
                self._columns = None
            self._hidden_schemas.discard(column)
            return
        if column not in self._base_columns and self._refit(column, col, spec):
            return
        raise SchemaMismatch(
            column,
            'a schema file that matches its schema,',
            describe_column(col),
            describe_spec(spec),
            "a column's schema cannot change once it holds committed samples: write into a new "
            'column (mkdir) or remove this one first',
        )

    def _refit(self, column: str, col: _ColumnBase, spec: SchemaSpec) -> bool:
        """Give a column made in this staging area the wider schema ``spec`` if its samples fit it
        (``cp -r`` may copy a column's samples before its schema); False if they do not."""
        if spec.kind != col.column_type or spec.nested != isinstance(col, NestedColumn):
            return False
        if isinstance(col, NestedColumn):
            nested = {key: dict(col[key].items()) for key in col}
            if not all(fits(spec, v) for sample in nested.values() for v in sample.values()):
                return False
            values: Any = nested
        else:
            values = dict(col.items())  # type: ignore[attr-defined]
            if not all(fits(spec, v) for v in values.values()):
                return False
        self.co.columns.delete(column)
        new = spec.add_to(self.co, column)
        new.update(values)  # type: ignore[attr-defined]
        self._columns = None
        self._hidden_schemas.discard(column)
        return True
