"""The one-to-one mapping between sample keys and file names.

- an int key is written in decimal: ``5`` -> ``5.npy``;
- a str key is written as it is: ``'cat.7'`` -> ``cat.7.npy``, ``'007'`` -> ``007.npy`` ...
- ... except a str key that reads as a canonical decimal int, which gets an ``@`` (a character keys
  cannot contain): ``'5'`` -> ``@5.npy``. So ``5`` and ``'5'`` never collide.
- the extension says the column kind: ``.npy`` arrays, ``.txt`` str (UTF-8), ``.bin`` bytes.
- in a nested column a sample is a directory named like a key (no extension) holding one file per
  subsample.

Keys never start with ``.``, so ``.schema.json`` and ``.hangarfs`` cannot clash with samples.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hangarfs.engine.keys import Key, normalize_key
from hangarfs.errors import InvalidKey

EXTENSIONS = {'ndarray': '.npy', 'str': '.txt', 'bytes': '.bin'}
STR_MARK = '@'
_CANONICAL_INT = re.compile(r'(0|[1-9][0-9]*)\Z')


def key_to_name(key: Key) -> str:
    """The file or directory name (without extension) of a key."""
    if type(key) is int:
        return str(key)
    assert isinstance(key, str)
    return STR_MARK + key if _CANONICAL_INT.match(key) else key


def file_names(keys: Iterable[Key], ext: str) -> list[str]:
    """``key_to_name(key) + ext`` for many keys (a listing's hot loop)."""
    return [str(k) + ext if type(k) is int else key_to_name(k) + ext for k in keys]


def name_to_key(name: str) -> Key:
    """The key a file or directory name (without extension) stands for, or InvalidKey."""
    if name.startswith(STR_MARK):
        rest = name[1:]
        if not _CANONICAL_INT.match(rest):
            raise InvalidKey(
                f'{name!r}: a leading {STR_MARK!r} marks a str key that looks like an int (such as @5); '
                f'{rest!r} does not, so name the file {rest!r} instead'
            )
        return rest
    if _CANONICAL_INT.match(name):
        value = int(name)
        return normalize_key(value)
    return normalize_key(name)


def sample_file_name(key: Key, kind: str) -> str:
    return key_to_name(key) + EXTENSIONS[kind]


def parse_sample_file_name(name: str, kind: str) -> Key:
    """The key of a sample file name in a column of ``kind``; InvalidKey if it cannot be one."""
    ext = EXTENSIONS[kind]
    if not name.endswith(ext) or len(name) == len(ext):
        others = ', '.join(f'{e} ({k})' for k, e in EXTENSIONS.items())
        raise InvalidKey(f'{name!r}: files in a {kind} column end with {ext} (kinds by extension: {others})')
    return name_to_key(name[: -len(ext)])
