"""What a path written through the staging mount becomes, and the handle of a file being written.

A written path names a sample file (``COLUMN/KEY.npy``, ``NESTED/KEY/SUBKEY.npy``), a column's
``.schema.json``, a metadata value (``.hangarfs/metadata/KEY``) or *scratch space*: a file the daemon
keeps in memory until it is renamed onto one of those names, and drops at unmount. Scratch names are
the names temporary files get: dotfiles (``rsync``, ``vim``'s swap files), names without an extension
(``sed -i``, ``perl -pi``, ``tempfile.mkstemp``, vim's ``4913`` probe), backups ending in ``~``,
``#autosave#`` files and temporary extensions such as ``.tmp``, ``.lock`` or ``.part``.

A name with any other extension is meant to be stored, so it must be a sample file of its column
(``.npy`` arrays, ``.txt`` str, ``.bin`` bytes, with a valid key), or it is refused at once with
:class:`~hangarfs.errors.InvalidKey` saying which rule it breaks: data never disappears silently.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from hangarfs.engine.keys import check_name
from hangarfs.errors import InvalidKey, ReadOnlyError
from hangarfs.fs.commit_view import META_DIR, METADATA_DIR, SCHEMA_FILE
from hangarfs.fs.names import EXTENSIONS, name_to_key, parse_sample_file_name
from hangarfs.fs.npy import NpyFormatError, parse_npy
from hangarfs.fs.writebuf import WriteBuffer

KIND_OF_EXTENSION = {ext: kind for kind, ext in EXTENSIONS.items()}
TEMPORARY_EXTENSIONS = frozenset(
    [
        'tmp',
        'temp',
        'swp',
        'swo',
        'swx',
        'lock',
        'bak',
        'orig',
        'rej',
        'part',
        'partial',
        'new',
        'old',
        'save',
        'sav',
        'crdownload',
        'dpkg-new',
        'dpkg-tmp',
    ]
)
SAMPLE_KINDS = ', '.join(f'{ext} ({kind})' for kind, ext in EXTENSIONS.items())

SAMPLE = 'sample'
SCHEMA = 'schema'
META = 'meta'
SCRATCH = 'scratch'


@dataclass(frozen=True)
class Target:
    """What a file written through the staging view becomes when it is closed."""

    kind: str  # SAMPLE, SCHEMA, META or SCRATCH
    column: str = ''
    key: Any = None
    subkey: Any = None  # nested columns: the subsample key
    file_kind: str = ''  # 'ndarray', 'str' or 'bytes', from the file's extension
    name: str = ''  # metadata key


def is_scratch_name(name: str) -> bool:
    """True for the names temporary files get (see the module doc)."""
    if name.startswith('.') or name.endswith('~') or (name.startswith('#') and name.endswith('#')):
        return True
    stem, dot, ext = name.rpartition('.')
    if not dot or not stem:
        return True
    return ext.lower() in TEMPORARY_EXTENSIONS


def classify(path: str, parts: list[str], column: Any | None, pending: bool) -> Target:
    """The target of a file written at ``path`` (``parts`` its components).

    ``column`` is the column named by ``parts[0]`` (None if there is none) and ``pending`` says whether
    ``mkdir`` made it and no sample or schema has set its schema yet. Raises InvalidKey (a name that
    breaks a rule), ReadOnlyError or FileNotFoundError.
    """
    name = parts[-1]
    if parts[0] == META_DIR:
        if len(parts) == 3 and parts[1] == METADATA_DIR:
            if name.startswith('.') or not _valid_name(name):
                return Target(SCRATCH)
            return Target(META, name=check_name(name, 'metadata key'))
        raise ReadOnlyError(f'{path}: under .hangarfs only metadata/KEY files can be written')
    if len(parts) == 1:
        if is_scratch_name(name):
            return Target(SCRATCH)
        raise InvalidKey(
            f'{path}: the mount root holds columns only; write samples into a column directory '
            '(mkdir a new one)'
        )
    col_name = parts[0]
    if column is None and not pending:
        raise FileNotFoundError(2, f'no column {col_name!r}', path)
    if name == SCHEMA_FILE and len(parts) == 2:
        return Target(SCHEMA, col_name)
    if is_scratch_name(name):
        return Target(SCRATCH)
    ext = '.' + name.rsplit('.', 1)[-1]
    if column is None:
        kind = KIND_OF_EXTENSION.get(ext)
        if kind is None:
            raise InvalidKey(f'{path}: {_not_a_sample(ext)}')
        nested = len(parts) == 3
    else:
        kind = column.column_type
        nested = column.contains_subsamples
    if nested:
        if len(parts) != 3:
            raise InvalidKey(
                f'{path}: column {col_name!r} is nested; write COLUMN/SAMPLE/SUBKEY{EXTENSIONS[kind]}'
            )
        return Target(SAMPLE, col_name, name_to_key(parts[1]), _sample_key(path, name, kind), kind)
    if len(parts) != 2:
        raise InvalidKey(f'{path}: column {col_name!r} is flat; samples are COLUMN/KEY{EXTENSIONS[kind]}')
    return Target(SAMPLE, col_name, _sample_key(path, name, kind), None, kind)


def _valid_name(name: str) -> bool:
    try:
        check_name(name, 'name')
    except InvalidKey:
        return False
    return True


def _not_a_sample(ext: str) -> str:
    extra = (
        ' (an .npz archive holds several arrays: np.save each one to its own .npy)' if ext == '.npz' else ''
    )
    return f'{ext} files are not samples{extra}; sample files end with {SAMPLE_KINDS}'


def _sample_key(path: str, name: str, kind: str) -> Any:
    ext = '.' + name.rsplit('.', 1)[-1]
    if ext != EXTENSIONS[kind]:
        if ext in KIND_OF_EXTENSION:
            raise InvalidKey(
                f'{path}: a {kind} column holds {EXTENSIONS[kind]} files, not {ext} '
                f'({KIND_OF_EXTENSION[ext]} samples go in a {KIND_OF_EXTENSION[ext]} column)'
            )
        raise InvalidKey(f'{path}: {_not_a_sample(ext)}')
    try:
        return parse_sample_file_name(name, kind)
    except InvalidKey as err:
        raise InvalidKey(f'{path}: {err}') from err


@dataclass(eq=False)
class WriteHandle:
    """An open file being written; its bytes are staged when it is flushed (closed).

    One open file may be flushed several times (each ``close()`` of a duplicated descriptor flushes,
    as a shell redirect does), so what counts is its state at the *last* flush: a flush whose bytes
    are invalid puts back what the target held before this handle staged anything.
    """

    path: str
    target: Target
    buffer: WriteBuffer
    dirty: bool = False
    kept: bool = False  # the buffer became a scratch file's content
    before: Any = None  # what the target held before this handle first staged (see StagingView._held)
    staged: Any = None  # what this handle's last successful flush made the target hold
    failure: BaseException | None = None  # why the last flush staged nothing (logged at release)
    detached: bool = False  # its name was unlinked while open: nothing it holds is staged any more
    mtime_ns: int | None = None  # set through utimens while open: the staged file keeps it
    mode: int | None = None  # set through chmod while open
    changed_ns: int = field(default_factory=time.time_ns)  # when its bytes last changed


def decode_file(data: bytes | memoryview, kind: str, path: str) -> Any:
    """The sample value a written file holds: an array (.npy), a str (UTF-8 .txt) or bytes (.bin)."""
    if kind == 'ndarray':
        return parse_npy(data)[1]
    if kind == 'str':
        try:
            return bytes(data).decode('utf-8')
        except UnicodeDecodeError as err:
            raise NpyFormatError(f'{path} is not UTF-8 text ({err.reason} at byte {err.start})') from err
    return bytes(data)
