"""Tags: names fixed to a commit (``v1.0``), which never move.

Every tag made here is *annotated*: the ref ``tag:NAME`` names a content-addressed
:class:`~hangarfs.engine.records.TagRecord` holding the commit, who made the tag, when, and an
optional message. A tag marks a release or the data a model was trained on, so who fixed the name and
when is worth the ~200 bytes, and one kind of tag keeps every reader simple. A ref that names a commit
directly (a *lightweight* tag, as another tool might write) is read too.

Tag names follow the branch name rules, and may not be a branch's name (a ref resolves to the branch
first, so such a tag could never be reached by name).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hangarfs.engine.keys import check_name
from hangarfs.engine.records import TagRecord, digest_of
from hangarfs.engine.refs import tag_ref
from hangarfs.engine.store import RepoStore
from hangarfs.errors import InvalidKey, RefNotFound, TagExists


@dataclass(frozen=True)
class Tag:
    name: str
    commit: str
    record: str  # digest of the TagRecord ('' for a lightweight tag)
    tagger: str = ''
    email: str = ''
    time: float = 0.0
    message: str = ''


def _tag_from_ref(store: RepoStore, name: str, target: str) -> Tag:
    rec = store.objects.tag_record(bytes.fromhex(target))
    if rec is not None:
        return Tag(name, rec.commit, target, rec.tagger, rec.email, rec.time_ns / 1e9, rec.message)
    return Tag(name, target, '')


def get_tag(store: RepoStore, name: str) -> Tag:
    target = store.refs.list('tag').get(name) if name else None
    if target is None:
        raise RefNotFound(name, 'tag')
    return _tag_from_ref(store, name, target)


def list_tags(store: RepoStore) -> list[Tag]:
    return [_tag_from_ref(store, name, target) for name, target in sorted(store.refs.list('tag').items())]


def create_tag(
    store: RepoStore, name: str, commit: str, *, tagger: str, email: str, message: str = ''
) -> Tag:
    """Fix ``name`` to ``commit`` (a full digest) in one synced transaction; TagExists if taken."""
    check_name(name, 'tag name')
    if not isinstance(message, str):
        raise TypeError(f'a tag message is a str, got {type(message).__name__}')
    if store.refs.branch_head(name) is not None:
        raise InvalidKey(
            f'tag name {name!r} is the name of a branch, which refs resolve to first; pick another name'
        )
    store.objects.commit(commit)  # RefNotFound unless the commit exists
    record = TagRecord(name, commit, tagger, email, time.time_ns(), message)
    data = record.to_bytes()
    digest = digest_of(data)
    with store.history.write() as txn:
        if store.refs.get(tag_ref(name), txn=txn) is not None:
            raise TagExists(name)
        store.objects.put(digest, data, txn=txn)
        store.refs.add_if_new(tag_ref(name), digest.hex(), txn=txn)
    return Tag(name, commit, digest.hex(), tagger, email, record.time_ns / 1e9, message)


def remove_tag(store: RepoStore, name: str) -> Tag:
    """Delete the tag ``name`` (its record stays, unreferenced); returns what it was."""
    tag = get_tag(store, name)
    with store.history.write() as txn:
        store.refs.remove_if_equals(tag_ref(name), tag.record or tag.commit, txn=txn)
    return tag
