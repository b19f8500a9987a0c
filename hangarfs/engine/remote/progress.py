"""How remote operations report progress: a label, a total in bytes (when known), and increments.

The engine reports; the CLI draws (a tqdm bar in bytes with the rate), Python callers pass nothing.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def begin(self, label: str, total: int | None) -> None:
        """A new phase (``'push images'``, ``'fetch data'``) of ``total`` bytes."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more moved."""

    def end(self) -> None:
        """The phase is over."""


class NoProgress:
    """Reports nothing."""

    def begin(self, label: str, total: int | None) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def end(self) -> None:
        pass


NO_PROGRESS = NoProgress()
