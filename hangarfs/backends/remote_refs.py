"""The one mutable object of a remote: ``refs``, all branches and tags, moved by compare-and-swap.

Every branch and tag of a remote lives in one small JSON document (Icechunk spec 2's "repo" object,
"the single point of consistency and atomicity"): a push that moves two branches and adds a tag is
one atomic write, and every update carries a ``generation`` (1, 2, 3 ...), a random ``write_id``,
the time, a message and the key of the previous version::

    {"format": 1, "generation": 7, "write_id": "…", "written_at": "2026-…Z", "message": "push master",
     "previous": "refs-log/999999999993.<write_id of generation 6>", "branches": {…}, "tags": {…}}

``update_refs(store, expected, ...)``:

1. copies the version being replaced (``expected.raw``, exactly the bytes read) to
   ``refs-log/<10^12 - generation>.<write_id>`` (create-only; a repeat finds the same bytes there),
   so the log is a linked list of every version, newest first in a listing. Named by generation,
   not by clock, so machines with skewed clocks still order it right;
2. writes the new document with ``If-Match: <version read>`` (``If-None-Match: *`` for the first);
3. on a precondition failure, reads ``refs`` back: if it holds our ``write_id``, an earlier attempt
   whose answer was lost had landed, and that is success; otherwise ``RemoteRefMoved`` ("the remote
   branch moved: fetch, merge, push") says which generation is there now. On an outcome unknown
   (a lost answer), the same read-back decides between success, ``RemoteRefMoved`` and a retry.

The document is always one small PUT, never multipart: moto does not honour ``If-Match`` on
CompleteMultipartUpload (measured, ../shared/probes/s3_cas_probe.json).
"""

from __future__ import annotations

import datetime
import json
import time
import types
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hangarfs.backends.objstore.base import ObjectStore
from hangarfs.errors_remote import (
    RemoteCorrupt,
    RemoteObjectExists,
    RemoteObjectNotFound,
    RemotePreconditionFailed,
    RemoteRefMoved,
    RemoteWriteOutcomeUnknown,
    UnsafeRemoteWrite,
)

REFS_KEY = 'refs'
REFS_LOG_PREFIX = 'refs-log/'
REFS_FORMAT = 1
_GENERATION_SPAN = 10**12


def _frozen(mapping: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return types.MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class RefsSnapshot:
    """One version of the remote refs, as read: ``version`` is the store's token for it (the ETag),
    ``raw`` its exact bytes; a remote without refs yet reads as ``exists=False``, generation 0."""

    branches: Mapping[str, str] = field(default_factory=_frozen)
    tags: Mapping[str, str] = field(default_factory=_frozen)
    generation: int = 0
    write_id: str = ''
    written_at: str = ''
    message: str = ''
    previous: str | None = None
    version: str | None = None
    raw: bytes = b''

    @property
    def exists(self) -> bool:
        return bool(self.raw)

    @property
    def log_key(self) -> str:
        """Where this version is kept once replaced."""
        return f'{REFS_LOG_PREFIX}{_GENERATION_SPAN - self.generation:012d}.{self.write_id}'


def _check_names(kind: str, refs: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, target in refs.items():
        if not isinstance(name, str) or not name or not isinstance(target, str) or not target:
            raise ValueError(f'expected {kind} as non-empty str -> non-empty str, got {name!r} -> {target!r}')
        out[name] = target
    return out


def serialize_refs(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, indent=1).encode('utf-8') + b'\n'


def parse_refs(raw: bytes, version: str | None, where: str) -> RefsSnapshot:
    """A snapshot from the bytes of a refs document; RemoteCorrupt if they are not one."""
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get('format') != REFS_FORMAT:
            raise ValueError(
                f'format {doc.get("format") if isinstance(doc, dict) else None!r} is not {REFS_FORMAT}'
            )
        return RefsSnapshot(
            branches=_frozen(_check_names('branches', doc['branches'])),
            tags=_frozen(_check_names('tags', doc['tags'])),
            generation=int(doc['generation']),
            write_id=str(doc['write_id']),
            written_at=str(doc.get('written_at', '')),
            message=str(doc.get('message', '')),
            previous=doc.get('previous'),
            version=version,
            raw=raw,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise RemoteCorrupt(where, f'not a valid refs document ({err}): damaged or truncated') from err


def read_refs(store: ObjectStore) -> RefsSnapshot:
    """The current refs (a snapshot with ``exists=False`` when there are none yet)."""
    try:
        raw, version = store.get_versioned(REFS_KEY)
    except RemoteObjectNotFound:
        return RefsSnapshot()
    return parse_refs(raw, version, store.object_url(REFS_KEY))


def read_refs_log(store: ObjectStore, limit: int | None = None) -> list[RefsSnapshot]:
    """Earlier versions of the refs, newest first (one LIST, then one GET per version returned)."""
    out = []
    for info in store.list(REFS_LOG_PREFIX)[:limit]:
        raw, version = store.get_versioned(info.key)
        out.append(parse_refs(raw, version, store.object_url(info.key)))
    return out


def update_refs(
    store: ObjectStore,
    expected: RefsSnapshot,
    *,
    branches: Mapping[str, str],
    tags: Mapping[str, str],
    message: str = '',
) -> RefsSnapshot:
    """Replace the refs ``expected`` (as read) with ``branches`` and ``tags``; see the module
    docstring. Returns the new snapshot; raises RemoteRefMoved if someone else moved them first."""
    doc = {
        'format': REFS_FORMAT,
        'generation': expected.generation + 1,
        'write_id': uuid.uuid4().hex,
        'written_at': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='milliseconds'),
        'message': message,
        'previous': expected.log_key if expected.exists else None,
        'branches': _check_names('branches', branches),
        'tags': _check_names('tags', tags),
    }
    body = serialize_refs(doc)
    where = store.object_url(REFS_KEY)
    if not store.capabilities.conditional_update and not store.unsafe_single_writer:
        raise UnsafeRemoteWrite(
            where,
            f'{store.url} cannot update the refs atomically ({store.capabilities.description}): two pushes '
            "could lose each other's commits. If only one process ever pushes to this remote, open it with "
            'unsafe_single_writer=True; otherwise use S3 or a local/NFS directory',
        )
    if expected.exists:
        try:
            store.put_create(expected.log_key, expected.raw)
        except RemoteObjectExists:
            pass  # another updater from the same version logged it (same bytes)
    started = time.monotonic()
    for attempt in range(1, store.retry.attempts + 1):
        try:
            if expected.exists:
                version = store.put_if_match(REFS_KEY, body, expected.version)
            else:
                version = store.put_create(REFS_KEY, body)
            return parse_refs(body, version, where)
        except (RemotePreconditionFailed, RemoteObjectExists):
            current = read_refs(store)
            if current.write_id == doc['write_id']:
                return current  # an earlier attempt landed; its answer was lost
            raise RemoteRefMoved(
                where,
                expected.generation,
                current.generation if current.exists else None,
                _moved(expected, current),
            ) from None
        except RemoteWriteOutcomeUnknown as err:
            current = read_refs(store)
            if current.write_id == doc['write_id']:
                return current
            if current.version != expected.version or current.exists != expected.exists:
                raise RemoteRefMoved(
                    where,
                    expected.generation,
                    current.generation if current.exists else None,
                    _moved(expected, current),
                ) from err
            if attempt == store.retry.attempts:
                raise RemoteWriteOutcomeUnknown(
                    where,
                    f'{err.cause}; the refs were left as they were',
                    attempt,
                    time.monotonic() - started,
                ) from err
            store.backoff_sleep(attempt)
    raise AssertionError('unreachable')  # pragma: no cover


def _moved(expected: RefsSnapshot, current: RefsSnapshot) -> str:
    """Which branches and tags differ between two snapshots, for the error message."""
    changed = []
    for kind, a, b in (('branch', expected.branches, current.branches), ('tag', expected.tags, current.tags)):
        for name in sorted(set(a) | set(b)):
            if a.get(name) != b.get(name):
                changed.append(f'{kind} {name!r}')
    if not changed:
        return ''
    more = f' and {len(changed) - 5} more' if len(changed) > 5 else ''
    return f' (changed: {", ".join(changed[:5])}{more})'
