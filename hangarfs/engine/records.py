"""Content-addressed records: column schemas, snapshots, commits and tags.

Every record has one canonical byte form (a type byte followed by canonical JSON: sorted keys, no
spaces, UTF-8) and its digest is blake2b-256 of those bytes. Tree nodes (``tree.py``) are the other
kind of object and use a binary form. Digests are raw 32-byte values inside the store and lowercase hex
strings at the API.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, NewType

Digest = NewType('Digest', bytes)  # 32 raw bytes
DIGEST_SIZE = 32
EMPTY_ROOT = Digest(bytes(DIGEST_SIZE))  # the root of an empty tree; never stored

TYPE_COMMIT = b'C'
TYPE_SNAPSHOT = b'S'
TYPE_TAG = b'T'


def digest_of(data: bytes) -> Digest:
    return Digest(hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest())


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')


def _load(data: bytes, tag: bytes, what: str) -> dict[str, Any]:
    if data[:1] != tag:
        raise ValueError(f'expected a {what} record (type {tag!r}), got type {data[:1]!r} instead')
    record: dict[str, Any] = json.loads(data[1:].decode('utf-8'))
    return record


@dataclass(frozen=True)
class ColumnSchema:
    """What a column holds and where new data goes.

    ``kind`` is 'ndarray', 'str' or 'bytes'; ``layout`` 'flat' or 'nested'. For ndarray columns
    ``dtype`` is the numpy dtype string and ``shape`` the exact shape, or the maximum shape when
    ``variable_shape``. ``backend`` is a backend code and ``backend_options`` its full options.
    ``inline_values``: the column's trees hold each sample's bytes instead of its digest (fixed-shape
    arrays of a few bytes, such as labels: the value is shorter than a digest and identifies it too).
    """

    kind: str
    layout: str = 'flat'
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    variable_shape: bool = False
    backend: str = '30'
    backend_options: dict[str, Any] = field(default_factory=dict)
    inline_values: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            'kind': self.kind,
            'layout': self.layout,
            'dtype': self.dtype,
            'shape': list(self.shape) if self.shape is not None else None,
            'variable_shape': self.variable_shape,
            'backend': self.backend,
            'backend_options': dict(self.backend_options),
            'inline_values': self.inline_values,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnSchema:
        shape = d.get('shape')
        return cls(
            kind=d['kind'],
            layout=d.get('layout', 'flat'),
            dtype=d.get('dtype'),
            shape=tuple(int(x) for x in shape) if shape is not None else None,
            variable_shape=bool(d.get('variable_shape', False)),
            backend=d.get('backend', '30'),
            backend_options=dict(d.get('backend_options') or {}),
            inline_values=bool(d.get('inline_values', False)),
        )

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> ColumnSchema:
        return cls.from_dict(json.loads(data.decode('utf-8')))

    @property
    def nested(self) -> bool:
        return self.layout == 'nested'


@dataclass(frozen=True)
class ColumnState:
    """A column as recorded in a snapshot: its schema, the root of its key tree, its sample count."""

    schema: ColumnSchema
    root: Digest
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {'schema': self.schema.to_dict(), 'root': self.root.hex(), 'count': self.count}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnState:
        return cls(ColumnSchema.from_dict(d['schema']), Digest(bytes.fromhex(d['root'])), int(d['count']))


@dataclass(frozen=True)
class Snapshot:
    """The complete state a commit records: every column and the metadata tree."""

    columns: dict[str, ColumnState]
    metadata_root: Digest = EMPTY_ROOT
    metadata_count: int = 0

    def to_bytes(self) -> bytes:
        body = {
            'columns': {name: st.to_dict() for name, st in self.columns.items()},
            'metadata': {'root': self.metadata_root.hex(), 'count': self.metadata_count},
        }
        return TYPE_SNAPSHOT + canonical_json(body)

    @classmethod
    def from_bytes(cls, data: bytes) -> Snapshot:
        d = _load(data, TYPE_SNAPSHOT, 'snapshot')
        cols = {name: ColumnState.from_dict(c) for name, c in d['columns'].items()}
        meta = d['metadata']
        return cls(cols, Digest(bytes.fromhex(meta['root'])), int(meta['count']))

    @property
    def digest(self) -> Digest:
        return digest_of(self.to_bytes())


EMPTY_SNAPSHOT = Snapshot({})


@dataclass(frozen=True)
class CommitRecord:
    """A commit. ``properties`` (bool/int/float/str values, see ``properties.py``) is written only when
    non-empty, so that a commit without any has the same bytes, and digest, as before they existed."""

    parents: tuple[str, ...]
    snapshot: str
    author: str
    email: str
    time_ns: int
    message: str
    properties: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        body = {
            'parents': list(self.parents),
            'snapshot': self.snapshot,
            'author': self.author,
            'email': self.email,
            'time_ns': self.time_ns,
            'message': self.message,
        }
        if self.properties:
            body['properties'] = dict(self.properties)
        return TYPE_COMMIT + canonical_json(body)

    @classmethod
    def from_bytes(cls, data: bytes) -> CommitRecord:
        d = _load(data, TYPE_COMMIT, 'commit')
        return cls(
            tuple(d['parents']),
            d['snapshot'],
            d['author'],
            d['email'],
            int(d['time_ns']),
            d['message'],
            dict(d.get('properties') or {}),
        )

    @property
    def digest(self) -> str:
        return digest_of(self.to_bytes()).hex()

    @property
    def time(self) -> float:
        return self.time_ns / 1e9


@dataclass(frozen=True)
class TagRecord:
    """An annotated tag: a name fixed to a commit, with who made it and why."""

    name: str
    commit: str
    tagger: str
    email: str
    time_ns: int
    message: str

    def to_bytes(self) -> bytes:
        body = {
            'name': self.name,
            'commit': self.commit,
            'tagger': self.tagger,
            'email': self.email,
            'time_ns': self.time_ns,
            'message': self.message,
        }
        return TYPE_TAG + canonical_json(body)

    @classmethod
    def from_bytes(cls, data: bytes) -> TagRecord:
        d = _load(data, TYPE_TAG, 'tag')
        return cls(d['name'], d['commit'], d['tagger'], d['email'], int(d['time_ns']), d['message'])
