"""Commit properties: a typed key -> value map recorded on a commit (experiment parameters, metrics).

Values are ``bool``, ``int``, ``float`` or ``str`` and come back with the same type: the commit record
stores them as JSON values (``true``, ``1000``, ``0.0001``, ``"adam"``), whose types are exactly these
four. numpy scalars are accepted and stored as the Python value of the same kind. Keys follow the rule
for metadata keys (``[A-Za-z0-9._-]``, not starting with ``.``) so that each can also name a file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Union

import numpy as np

from hangarfs.engine.keys import check_name
from hangarfs.errors import InvalidKey, InvalidProperty

PropertyValue = Union[bool, int, float, str]  # noqa: UP007 (a runtime alias)
MAX_INT = 2**63 - 1
MAX_STR_BYTES = 64 << 10


def normalize_property(key: object, value: object) -> tuple[str, PropertyValue]:
    """Validate one property; return it with numpy scalars turned into Python values."""
    try:
        name = check_name(key, 'property key')
    except InvalidKey as err:
        raise InvalidProperty(str(err)) from err
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_, np.void)):
        value = value.item()
    if isinstance(value, bool):
        return name, value
    if isinstance(value, int):
        if not -MAX_INT - 1 <= value <= MAX_INT:
            raise InvalidProperty(
                f'property {name!r}: int {value} is outside the int64 range; store it as str'
            )
        return name, int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidProperty(
                f'property {name!r} is {value}: properties hold finite numbers (the record is JSON); '
                f'store str({value}) if you need to record it'
            )
        return name, float(value)
    if isinstance(value, str):
        if len(value.encode('utf-8', 'surrogatepass')) > MAX_STR_BYTES:
            raise InvalidProperty(f'property {name!r}: a str of more than {MAX_STR_BYTES} bytes is too long')
        try:
            value.encode('utf-8')
        except UnicodeEncodeError as err:
            raise InvalidProperty(f'property {name!r}: the str is not valid UTF-8 ({err.reason})') from err
        return name, str(value)
    raise InvalidProperty(
        f'property {name!r} has type {type(value).__name__}; commit properties are bool, int, float or str'
    )


def normalize_properties(properties: Mapping[str, Any] | None) -> dict[str, PropertyValue]:
    """Validate every property (all or nothing) and return them sorted by key."""
    if properties is None:
        return {}
    if not isinstance(properties, Mapping):
        raise InvalidProperty(
            f'commit properties are a mapping of key -> value, got {type(properties).__name__}'
        )
    out = dict(normalize_property(k, v) for k, v in properties.items())
    return dict(sorted(out.items()))
