"""The diff types under the module name Hangar documents them in (``hangar.diff``): what
``co.diff.branch / commit / staged`` return (see ``hangarfs.engine.hangar_diff``)."""

from hangarfs.engine.hangar_diff import (
    Changes,
    ColumnSchemaKey,
    Conflicts,
    DataRecordVal,
    DiffAndConflicts,
    DiffOut,
    DiffView,
    FlatColumnDataKey,
    NestedColumnDataKey,
)

__all__ = [
    'Changes',
    'ColumnSchemaKey',
    'Conflicts',
    'DataRecordVal',
    'DiffAndConflicts',
    'DiffOut',
    'DiffView',
    'FlatColumnDataKey',
    'NestedColumnDataKey',
]
