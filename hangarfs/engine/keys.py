"""Sample keys, column names and metadata keys: validation and the byte encoding used in trees.

A key is a non-negative int (below 2**64) or a str of ``[A-Za-z0-9._-]``, 1 to 255 characters, not
starting with ``.``. ``5`` and ``'5'`` are different keys.

The encoding is order preserving and self-delimiting, so that encoded keys sort as the keys do (all int
keys first, numerically, then str keys in byte order) and a nested key is the concatenation of its parts:

- int ``n``: ``0x00``, one length byte ``L``, then ``n`` as ``L`` big-endian bytes (``L`` minimal);
- str ``s``: ``0x01``, the ASCII bytes, ``0x00``.
"""

from __future__ import annotations

import re
from typing import Union

import numpy as np

from hangarfs.errors import InvalidKey

Key = Union[int, str]  # noqa: UP007 (a runtime alias)

MAX_KEY_LENGTH = 255
MAX_INT_KEY = 2**64 - 1
_KEY_RE = re.compile(r'[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,254}\Z')
_INT_TAG = 0
_STR_TAG = 1


def _why_invalid_str(key: str, what: str) -> str:
    # "is not suitable", as Hangar words it, then what is wrong
    if key == '':
        return f'{what} {key!r} is not suitable: it must not be empty'
    if len(key) > MAX_KEY_LENGTH:
        return (
            f'{what} {key[:20]!r}... is not suitable: it is {len(key)} characters long; '
            f'the limit is {MAX_KEY_LENGTH}'
        )
    if key.startswith('.'):
        return f'{what} {key!r} is not suitable: it must not start with "."'
    bad = sorted({c for c in key if not re.match(r'[A-Za-z0-9._\-]', c)})
    return f'{what} {key!r} is not suitable: it has characters outside [A-Za-z0-9._-]: {"".join(bad)!r}'


def check_name(name: object, what: str = 'column name') -> str:
    """Validate a column name or metadata key (a str key) and return it."""
    if not isinstance(name, str):
        raise InvalidKey(f'{what} {name!r} is not suitable: it must be a str, got {type(name).__name__}')
    if not _KEY_RE.match(name):
        raise InvalidKey(_why_invalid_str(name, what))
    return name


def normalize_key(key: object) -> Key:
    """Return the canonical form of a sample key (numpy ints become int) or raise InvalidKey."""
    if type(key) is int:
        if 0 <= key <= MAX_INT_KEY:
            return key
        raise InvalidKey(f'int key {key} is not suitable: int keys go from 0 to 2**64-1')
    if type(key) is str:
        if _KEY_RE.match(key):
            return key
        raise InvalidKey(_why_invalid_str(key, 'key'))
    if isinstance(key, np.integer) and not isinstance(key, np.bool_):
        return normalize_key(int(key))
    if isinstance(key, (bool, np.bool_)):
        raise InvalidKey(f'key {key!r} is not suitable: it is a bool; keys are non-negative ints or str')
    if isinstance(key, int):  # int subclasses (IntEnum and such)
        return normalize_key(int(key))
    raise InvalidKey(
        f'key {key!r} is not suitable: it has type {type(key).__name__}; keys are non-negative ints '
        'or str of [A-Za-z0-9._-]'
    )


def encode_key(key: object) -> bytes:
    """Validate ``key`` and return its order-preserving byte encoding."""
    if type(key) is int and 0 <= key <= MAX_INT_KEY:  # fast path for the common case
        n = (key.bit_length() + 7) >> 3
        return bytes((_INT_TAG, n)) + key.to_bytes(n, 'big')
    k = normalize_key(key)
    if type(k) is int:
        return encode_key(k)
    return b'\x01' + k.encode('ascii') + b'\x00'  # type: ignore[union-attr]


def encode_valid_key(key: Key) -> bytes:
    """Encode a key already known to be valid (no checks)."""
    if type(key) is int:
        n = (key.bit_length() + 7) >> 3
        return bytes((_INT_TAG, n)) + key.to_bytes(n, 'big')
    return b'\x01' + key.encode('ascii') + b'\x00'  # type: ignore[union-attr]


def decode_key(data: bytes, pos: int = 0) -> tuple[Key, int]:
    """Decode one key starting at ``pos``; return it and the position after it."""
    tag = data[pos]
    if tag == _INT_TAG:
        n = data[pos + 1]
        end = pos + 2 + n
        return int.from_bytes(data[pos + 2 : end], 'big'), end
    if tag == _STR_TAG:
        end = data.index(b'\x00', pos + 1)
        return data[pos + 1 : end].decode('ascii'), end + 1
    raise ValueError(f'not an encoded key: tag byte {tag} at offset {pos}')


def decode_one_key(data: bytes) -> Key:
    key, end = decode_key(data)
    if end != len(data):
        raise ValueError(f'{len(data) - end} trailing bytes after an encoded key')
    return key


def decode_keys(encoded: list[bytes]) -> list[Key]:
    """``decode_one_key`` over a list, with the common case (int keys) inline: for listings of millions."""
    return [
        int.from_bytes(k[2:], 'big') if k[0] == _INT_TAG and len(k) == k[1] + 2 else decode_one_key(k)
        for k in encoded
    ]


def decode_key_pair(data: bytes) -> tuple[Key, Key]:
    """Decode an encoded (key, subkey) pair of a nested column."""
    key, pos = decode_key(data)
    sub, end = decode_key(data, pos)
    if end != len(data):
        raise ValueError(f'{len(data) - end} trailing bytes after an encoded key pair')
    return key, sub


def key_sort_order(key: Key) -> tuple[int, int | str]:
    """Sort order of keys, equal to the order of their encodings: ints first, then strs."""
    return (0, key) if type(key) is int else (1, key)
