"""Column operations beyond add and delete: renaming a column in a writer checkout.

A rename stages every sample of the column under the new name by reference (the stored bytes are not
read, hashed or copied: references are content addresses) and removes the old column, so it costs one
staging entry per sample; the next commit records the column under its new name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hangarfs.engine.columns import Column
from hangarfs.engine.keys import check_name, encode_key
from hangarfs.engine.nested import NestedColumn
from hangarfs.engine.staging import SET, column_prefix
from hangarfs.errors import ColumnExists

if TYPE_CHECKING:
    from hangarfs.engine.writer_checkout import WriterCheckout

BATCH = 65536  # staging entries per write


def rename_column(checkout: WriterCheckout, old: str, new: str) -> None:
    """Rename column ``old`` to ``new`` in a writer checkout (ColumnNotFound, ColumnExists, InvalidKey)."""
    checkout._check_writable()
    check_name(new, 'column name')
    col = checkout.columns[old]
    if new == old:
        return
    if new in checkout.columns:
        raise ColumnExists(new)
    checkout._add_column(new, col.schema)
    prefix = column_prefix(new)
    typesize = col._codec.typesize
    entries: list[tuple[bytes, bytes]] = []

    writer = checkout._access

    def stage() -> None:
        writer.stage_many(new, entries, [], typesize)
        entries.clear()

    if isinstance(col, NestedColumn):
        for key in list(col.keys()):
            kenc = encode_key(key)
            for senc, ref in col._sub_refs_enc(kenc):
                entries.append((prefix + kenc + senc, SET + ref))
                if len(entries) >= BATCH:
                    stage()
    else:
        assert isinstance(col, Column)
        for kenc, ref in writer.iter_refs(old):
            entries.append((prefix + kenc, SET + ref))
            if len(entries) >= BATCH:
                stage()
    if entries:
        stage()
    checkout.columns.delete(old)
