"""A checkout as Hangar 0.5 presents it: a batch context, and a mapping of column name -> column.

``with co:`` (and ``with co.columns:``) is Hangar's batch context over every column: writes inside it
are gathered and made durable together when the block exits, and the checkout stays open afterwards
(close it with ``co.close()``, or ``with contextlib.closing(repo.checkout(...)) as co:``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hangarfs.engine.checkout import Columns


class CheckoutMapping:
    """Mixed into ``Checkout``: what Hangar code expects of a checkout object besides columns."""

    _enter_count = 0  # depth of ``with co:`` blocks

    # provided by Checkout

    @property
    def columns(self) -> Columns:
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
