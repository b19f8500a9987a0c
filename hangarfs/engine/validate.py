"""Checks of arguments that the public API shares (Hangar 0.5 makes the same ones)."""

from __future__ import annotations

import numpy as np


def check_flag(what: str, value: object) -> bool:
    """``value`` as a bool, when it is one (numpy's bools included); else ValueError naming ``what``.

    Flags take only booleans: ``contains_subsamples='False'`` is a truthy string, and silently making a
    nested column of it is worse than an error.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f'{what} takes True or False, got {type(value).__name__} {value!r}')
