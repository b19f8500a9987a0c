"""A checkout as Hangar 0.5 presents it: a batch context, and a mapping of column name -> column.

``with co:`` (and ``with co.columns:``) is Hangar's batch context over every column: writes inside it
are gathered and made durable together when the block exits, and the checkout stays open afterwards
(close it with ``co.close()``, or ``with contextlib.closing(repo.checkout(...)) as co:``).

Reading through the checkout follows Hangar's ``co[...]`` rules: an index is a path that starts with a
column name and is followed by keys, each applied in turn, and several paths give a list::

    co['images']                               # the column
    co['images', 0]                            # one sample
    co['scans', 'patient1', 'axial']           # a subsample of a nested column
    co['scans', 'patient1', ...]               # every subsample of a sample, as a dict
    co[('images', 0), ('labels', 0)]           # a list, one value per path, in order
    co[[('images', k) for k in range(4)]]      # the same from a list of paths
    co.get(('images', 99), default=None)       # a missing key gives ``default`` instead of KeyError
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import reduce
from operator import getitem
from typing import TYPE_CHECKING, Any

from hangarfs.engine.log import show_log
from hangarfs.errors import RefNotFound

if TYPE_CHECKING:
    from hangarfs.engine.checkout_facades import Columns
    from hangarfs.engine.columns import _ColumnBase
    from hangarfs.engine.store import RepoStore

# what a missing column, key or subkey raises along a path (Hangar's set): get() turns them into default
MISSING = (KeyError, IndexError, TypeError)


class CheckoutMapping:
    """Mixed into ``Checkout``: what Hangar code expects of a checkout object besides its columns."""

    _enter_count = 0  # depth of ``with co:`` blocks
    _branch: str | None
    _writable: bool

    # provided by Checkout

    @property
    def _store(self) -> RepoStore:
        raise NotImplementedError

    @property
    def _commit(self) -> str:
        raise NotImplementedError

    @property
    def columns(self) -> Columns:
        raise NotImplementedError

    def _column(self, name: str) -> _ColumnBase:
        raise NotImplementedError

    def _check_open(self) -> None:
        raise NotImplementedError

    def _enter_batch(self) -> None:
        raise NotImplementedError

    def _exit_batch(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ the batch context

    def __enter__(self) -> Any:
        self._check_open()
        self._enter_batch()
        self._enter_count += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._enter_count -= 1
        self._exit_batch()

    @property
    def _is_conman(self) -> bool:
        """True inside ``with co:`` (Hangar's name, which its own code and tests use)."""
        self._check_open()
        return self._enter_count > 0

    # ------------------------------------------------------------------ column name -> column

    def __len__(self) -> int:
        return len(self.columns)

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def keys(self) -> Iterator[str]:
        """Column names, in order."""
        yield from self.columns

    def values(self) -> Iterator[_ColumnBase]:
        """Every column."""
        cols = self.columns
        for name in list(cols):
            yield cols[name]

    def items(self) -> Iterator[tuple[str, _ColumnBase]]:
        """(name, column) pairs."""
        cols = self.columns
        for name in list(cols):
            yield name, cols[name]

    # ------------------------------------------------------------------ reads by path

    def __getitem__(self, index: Any) -> Any:
        """A column, a sample, a subsample, or a list of them (see the module docstring)."""
        return self._get_in(index, None, True)

    def get(self, keys: Any, default: Any = None, except_missing: bool = False) -> Any:
        """As ``co[keys]``, but a missing key (or column) gives ``default`` in its place; with
        ``except_missing=True`` it raises KeyError as ``co[keys]`` does."""
        return self._get_in(keys, default, except_missing)

    def _get_in(self, keys: Any, default: Any, except_missing: bool) -> Any:
        self._check_open()
        if isinstance(keys, str):
            return self._column(keys)
        if not isinstance(keys, (tuple, list)) or not keys:
            raise TypeError(
                f"index a checkout with a column name or a path such as ('images', 0), or several "
                f'paths, got {keys!r}'
            )
        if len(keys) >= 2 and any(isinstance(k, (list, tuple)) for k in keys):
            return [self._path_value(path, default, except_missing) for path in keys]
        return self._path_value(keys, default, except_missing)

    def _path_value(self, path: Any, default: Any, except_missing: bool) -> Any:
        try:
            if not isinstance(path, (tuple, list)) or not path:
                raise TypeError(
                    f"a path is a column name followed by keys, such as ('images', 0); got {path!r}"
                )
            col = self._column(path[0])
            n = len(path)
            if n == 2:
                return col[path[1]]
            if n == 3 and col.contains_subsamples and isinstance(path[2], (str, int)):
                return col[path[1], path[2]]  # one lookup, without making the sample object
            return reduce(getitem, path[1:], col)
        except MISSING:
            if except_missing:
                raise
            return default

    # ------------------------------------------------------------------ history

    def log(
        self,
        branch: str | None = None,
        commit: str | None = None,
        *,
        return_contents: bool = False,
        show_time: bool = False,
        show_user: bool = False,
        graph: bool = False,
    ) -> dict[str, Any] | None:
        """``repo.log`` starting, by default, at this checkout: a reader's commit, the writer's branch."""
        self._check_open()
        store = self._store
        if commit is not None:
            head = store.refs.resolve(commit).commit
        elif branch is not None or self._writable:
            name = branch if branch is not None else self._branch or ''
            found = store.refs.branch_head(name)
            if found is None:
                raise RefNotFound(name, 'branch')
            head = found
        else:
            head = self._commit
        return show_log(
            store,
            head,
            return_contents=return_contents,
            show_time=show_time,
            show_user=show_user,
            graph=graph,
        )
