"""Reading the arguments of column methods as Python's own types read theirs: lookup keys as a dict
lookup does, ``update`` arguments as ``dict.update`` does, and fresh keys for ``append``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from hangarfs.engine.keys import encode_key
from hangarfs.errors import InvalidKey, SampleNotFound, UnhashableKey


def read_key(column: str, key: Any) -> bytes:
    """The encoding of a key being looked up. A hashable value that cannot be a key is simply absent
    (SampleNotFound, a KeyError, as a dict lookup says); an unhashable one (a list, an array) is an
    UnhashableKey, a TypeError, as a dict lookup says too. Writes keep the stricter InvalidKey."""
    try:
        return encode_key(key)
    except InvalidKey as err:
        try:
            hash(key)
        except TypeError:
            raise UnhashableKey(column, key) from err
        raise SampleNotFound(column, key, why=str(err)) from err


def new_sample_key(exists: Callable[[str], bool]) -> str:
    """A fresh str key for ``append`` (Hangar generates one too): the time in nanoseconds, in hex, so
    that appended samples list in the order they were added, and 8 random hex digits."""
    while True:
        key = f'{time.time_ns():016x}{secrets.token_hex(4)}'
        if not exists(key):
            return key


def update_pairs(column: str, other: Any, kwargs: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    """The (key, value) pairs of ``update(other, **kwargs)``, read as ``dict.update`` reads them: a
    mapping, or an iterable of 2-item pairs; a bad element gets dict's error, naming the column."""
    if other is None:
        items: list[tuple[Any, Any]] = []
    elif isinstance(other, Mapping):
        items = list(other.items())
    else:
        usage = 'update() takes a mapping or an iterable of (key, value) pairs'
        try:
            elements = iter(other)
        except TypeError:
            raise TypeError(f'column {column!r}: {usage}, got {type(other).__name__}') from None
        items = []
        for i, element in enumerate(elements):
            try:
                n = len(element)
            except TypeError:
                raise TypeError(
                    f'column {column!r}: cannot convert dictionary update sequence element #{i} '
                    f'({type(element).__name__}) to a sequence; {usage}'
                ) from None
            if n != 2:
                raise ValueError(
                    f'column {column!r}: dictionary update sequence element #{i} has length {n}; 2 is '
                    f'required ({usage}, e.g. [(key, value), ...])'
                )
            key, value = element
            items.append((key, value))
    items.extend(kwargs.items())
    return items
