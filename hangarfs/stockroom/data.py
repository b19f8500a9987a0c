"""The data shelf: ``stock.data['images'][0] = arr`` over ordinary hangarfs columns.

``stock.data[name]`` names a column of the repository (the same column a mount shows as ``name/``); the
first write to a column that does not exist creates it from the value: an ndarray column of that dtype
and shape (create it yourself with :meth:`Data.add_column` for variable shapes), or a str or bytes
column. The column ``model`` belongs to the model shelf.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hangarfs.engine.keys import Key, check_name, normalize_key
from hangarfs.engine.nested import NestedSample
from hangarfs.errors import ColumnNotFound, InvalidKey, SchemaMismatch

if TYPE_CHECKING:
    from hangarfs.engine.checkout import Checkout
    from hangarfs.engine.writer_checkout import WriterCheckout
    from hangarfs.stockroom.core import StockRoom

MODEL_COLUMN = 'model'
RESERVED_COLUMNS = frozenset({MODEL_COLUMN})


def data_value(value: Any, where: str) -> Any:
    """A value the data shelf stores: a numpy array (torch/tf tensors converted), a str or bytes."""
    if isinstance(value, (np.ndarray, str, bytes)):
        return value
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_)):
        return np.asarray(value)
    module = type(value).__module__.split('.')[0]
    if module == 'torch':
        return value.detach().cpu().numpy()
    if module in ('tensorflow', 'keras', 'jax', 'jaxlib') and hasattr(value, '__array__'):
        return np.asarray(value)
    raise TypeError(
        f'{where}: data values are numpy arrays (or str, bytes), got {type(value).__name__}; '
        'wrap it with numpy.asarray(...) choosing its dtype'
    )


def _kind_of(value: Any) -> str:
    return 'str' if isinstance(value, str) else 'bytes' if isinstance(value, bytes) else 'ndarray'


def _check_column_name(name: object) -> str:
    name = check_name(name, 'data column name')
    if name in RESERVED_COLUMNS:
        raise InvalidKey(f'column {name!r} holds the model shelf: use stock.model, not stock.data[{name!r}]')
    return name


def _materialize(value: Any) -> Any:
    return dict(value.items()) if isinstance(value, NestedSample) else value


class DataColumn:
    """One column of the data shelf: ``stock.data['images'][key]`` reads and writes samples."""

    def __init__(self, stock: StockRoom, name: str) -> None:
        self._stock = stock
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def _column(self, co: Checkout | None) -> Any:
        if co is None:
            raise ColumnNotFound(self._name, [])
        return co.columns[self._name]

    def __getitem__(self, key: Any) -> Any:
        with self._stock._reading() as co:
            return _materialize(self._column(co)[key])

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: Any, value: Any) -> None:
        self.update({key: value})

    def update(self, items: Mapping[Any, Any] | Sequence[tuple[Any, Any]]) -> None:
        """Write many samples: all of them, or none if a key or value is bad."""
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        checked: list[tuple[Any, Any]] = []
        for key, value in pairs:
            where = f'stock.data[{self._name!r}][{key!r}]'
            if isinstance(key, tuple):
                checked.append((tuple(normalize_key(k) for k in key), data_value(value, where)))
            else:
                checked.append((normalize_key(key), data_value(value, where)))
        if not checked:
            return
        with self._stock._writing() as co:
            exists = self._name in co.columns
            if exists:
                col = co.columns[self._name]
                kind, nested = col.column_type, col.contains_subsamples
            else:
                kind, nested = _kind_of(checked[0][1]), False
            for key, value in checked:  # every key and value fits, before anything is staged
                where = f'stock.data[{self._name!r}][{key!r}]'
                if isinstance(key, tuple) != nested:
                    layout = 'nested: give (key, subkey)' if nested else 'flat: give one key'
                    raise InvalidKey(f'{where}: column {self._name!r} is {layout}')
                if _kind_of(value) != kind:
                    raise SchemaMismatch(self._name, 'a value of kind', kind, _kind_of(value))
                if exists and kind == 'ndarray':
                    col.check_array(value.dtype, value.shape)
                elif kind == 'ndarray':
                    first = checked[0][1]
                    if (value.dtype, value.shape) != (first.dtype, first.shape):
                        raise SchemaMismatch(
                            self._name,
                            'samples like the first (the new column takes its dtype and shape):',
                            f'{first.dtype} {first.shape}',
                            f'{value.dtype} {value.shape}',
                            'create the column with stock.data.add_column(name, shape=MAX, dtype=..., '
                            'variable_shape=True) for samples of several shapes',
                        )
            if not exists:
                col = self._create(co, kind, checked[0][1])
            with col:
                for key, value in checked:
                    col[key] = value

    def _create(self, co: WriterCheckout, kind: str, value: Any) -> Any:
        if kind == 'str':
            return co.add_str_column(self._name)
        if kind == 'bytes':
            return co.add_bytes_column(self._name)
        return co.add_ndarray_column(self._name, prototype=value)

    def __delitem__(self, key: Any) -> None:
        with self._stock._writing() as co:
            del self._column(co)[key]

    def __contains__(self, key: object) -> bool:
        with self._stock._reading() as co:
            return co is not None and self._name in co.columns and key in co.columns[self._name]  # type: ignore[operator]

    def keys(self) -> list[Key]:
        with self._stock._reading() as co:
            return list(self._column(co).keys())

    def __iter__(self) -> Iterator[Key]:
        return iter(self.keys())

    def __len__(self) -> int:
        with self._stock._reading() as co:
            return len(self._column(co))

    def items(self) -> list[tuple[Key, Any]]:
        with self._stock._reading() as co:
            return [(k, _materialize(v)) for k, v in self._column(co).items()]

    def __repr__(self) -> str:
        return f'<stock.data[{self._name!r}]>'


class Data:
    """The data shelf: ``stock.data['column'][key]`` (or ``stock.data['column', key]``)."""

    def __init__(self, stock: StockRoom) -> None:
        self._stock = stock

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, tuple) and len(index) == 2:
            return self[index[0]][index[1]]
        return DataColumn(self._stock, _check_column_name(index))

    def __setitem__(self, index: Any, value: Any) -> None:
        if not (isinstance(index, tuple) and len(index) == 2):
            raise TypeError(
                "write a sample with stock.data['column'][key] = value (or stock.data['column', key] = value)"
            )
        self[index[0]][index[1]] = value

    def __delitem__(self, name: str) -> None:
        """Remove a whole column (staged until the next commit)."""
        name = _check_column_name(name)
        with self._stock._writing() as co:
            co.columns.delete(name)

    def add_column(
        self,
        name: str,
        *,
        shape: int | Sequence[int] | None = None,
        dtype: Any = None,
        prototype: np.ndarray | None = None,
        variable_shape: bool = False,
        kind: str = 'ndarray',
        backend: str | None = None,
    ) -> DataColumn:
        """Create a column explicitly (a variable shape up to ``shape``, a backend...)."""
        name = _check_column_name(name)
        with self._stock._writing() as co:
            if kind == 'str':
                co.add_str_column(name, backend=backend)
            elif kind == 'bytes':
                co.add_bytes_column(name, backend=backend)
            elif kind == 'ndarray':
                co.add_ndarray_column(
                    name, shape, dtype, prototype, variable_shape=variable_shape, backend=backend
                )
            else:
                raise ValueError(f"kind is 'ndarray', 'str' or 'bytes', got {kind!r}")
        return DataColumn(self._stock, name)

    def keys(self) -> list[str]:
        with self._stock._reading() as co:
            return [] if co is None else [n for n in co.columns if n not in RESERVED_COLUMNS]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.keys()

    def __repr__(self) -> str:
        return f'<Data shelf: {", ".join(self.keys()) or "no columns"}>'
