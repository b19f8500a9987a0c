"""The mapping facades of a checkout: ``co.columns`` (name -> column) and ``co.metadata`` (str -> str).

Both read through the checkout's access object (``access.py``); the columns facade also adds and
removes columns through the checkout, which owns the column objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from hangarfs.engine.columns import _ColumnBase
from hangarfs.engine.keys import check_name, decode_one_key, encode_key
from hangarfs.engine.staged_access import StagedAccess
from hangarfs.errors import ColumnInUse

if TYPE_CHECKING:
    from hangarfs.engine.checkout import Checkout


class Columns(Mapping[str, _ColumnBase]):
    """The columns of a checkout: ``co.columns['images']``, ``'images' in co.columns``, ``len``."""

    def __init__(self, checkout: Checkout) -> None:
        self._co = checkout
        self._enter_count = 0

    def __getitem__(self, name: str) -> _ColumnBase:
        return self._co._column(name)

    def __iter__(self) -> Iterator[str]:
        self._co._check_open()
        return iter(sorted(self._co._schemas()))

    def __len__(self) -> int:
        self._co._check_open()
        return len(self._co._schemas())

    def __contains__(self, name: object) -> bool:
        self._co._check_open()
        return name in self._co._schemas()

    @property
    def iswriteable(self) -> bool:
        self._co._check_open()
        return self._co._writable

    @property
    def contains_remote_references(self) -> dict[str, bool]:
        """Column name -> whether some of its samples exist only on a remote (Hangar's property)."""
        return {name: self[name].contains_remote_references for name in self}

    @property
    def remote_sample_keys(self) -> dict[str, tuple[Any, ...]]:
        """Column name -> keys of its samples that exist only on a remote (Hangar's property)."""
        return {name: self[name].remote_reference_keys for name in self}

    def __enter__(self) -> Columns:
        """Hangar's batch context over every column (as ``with co:``)."""
        self._co._check_open()
        self._co._enter_batch()
        self._enter_count += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._enter_count -= 1
        self._co._exit_batch()

    @property
    def _is_conman(self) -> bool:
        return self._enter_count > 0 or self._co._enter_count > 0

    def _any_is_conman(self) -> bool:
        """True while this object, the checkout, or any of its columns is in a ``with`` block."""
        return self._is_conman or any(col._is_conman for col in self._co._column_cache.values())

    def delete(self, name: str) -> str:
        """Remove a column (staged until the next commit); returns its name."""
        self._co._check_writable()
        if self._any_is_conman():
            raise ColumnInUse(
                f'cannot remove column {name!r} inside a `with` block of the checkout or of a column '
                '(as in Hangar); remove it after the block'
            )
        self._co._delete_column(name)
        return name

    def __delitem__(self, name: str) -> None:
        self.delete(name)

    def __repr__(self) -> str:
        if self._co._access.closed:
            return '<Columns of a closed checkout>'
        rows = [
            f'  {name:<24} {self._co._column(name).schema.kind:<8} {len(self._co._column(name))} samples'
            for name in self
        ]
        body = '\n'.join(rows) if rows else '  (no columns)'
        return f'<Columns: {len(self)} in a {"write" if self._co._writable else "read"} checkout\n{body}>'


class Metadata(MutableMapping[str, str]):
    """Versioned str -> str pairs (``co.metadata['source'] = 'mnist v1'``)."""

    def __init__(self, checkout: Checkout) -> None:
        self._co = checkout

    def _raw(self, key: str) -> str | None:
        v = self._co._access.metadata_get(encode_key(check_name(key, 'metadata key')))
        return v.decode() if v is not None else None

    def _writer(self) -> StagedAccess:
        self._co._check_writable()
        access = self._co._access
        assert isinstance(access, StagedAccess)  # a writable checkout's access stages
        return access

    def __getitem__(self, key: str) -> str:
        v = self._raw(key)
        if v is None:
            raise KeyError(key)
        return v

    def __setitem__(self, key: str, value: str) -> None:
        writer = self._writer()
        if not isinstance(value, str):
            raise TypeError(f'metadata values are str, got {type(value).__name__} for key {key!r}')
        writer.set_metadata(encode_key(check_name(key, 'metadata key')), value.encode('utf-8'))

    def __delitem__(self, key: str) -> None:
        writer = self._writer()
        if self._raw(key) is None:
            raise KeyError(key)
        writer.set_metadata(encode_key(key), None)

    def __iter__(self) -> Iterator[str]:
        for k, _ in self._co._access.metadata_items():
            yield str(decode_one_key(k))

    def items(self) -> Any:
        return [(str(decode_one_key(k)), v.decode()) for k, v in self._co._access.metadata_items()]

    def __len__(self) -> int:
        return sum(1 for _ in self._co._access.metadata_items())

    def __repr__(self) -> str:
        return f'<Metadata {dict(self.items())!r}>'
