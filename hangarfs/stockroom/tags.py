"""The tag shelf: experiment parameters and metrics recorded on the commit ``stock.commit`` makes.

Tags are commit-level, not versioned data: ``stock.tag['lr'] = 0.0001`` sets a tag for the next stock
commit, which records it in its commit record (``CommitRecord.properties``); any later checkout of that
commit reads it back with its type (bool, int, float or str), and so does a mount
(``.hangarfs/commit.json``). The next commit starts with no tags: nothing passes down the history.

Reading ``stock.tag[key]`` shows the tags set for the next commit over those of the commit head.stock
names. Tags set but not committed live in the repository's store (``.hangarfs/stockroom/``), written
under the writer lock, so ``stock commit`` from the shell records tags set from Python.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hangarfs.engine.properties import PropertyValue, normalize_property
from hangarfs.engine.repository import Repository
from hangarfs.errors import InvalidProperty

if TYPE_CHECKING:
    from hangarfs.stockroom.core import StockRoom

PENDING_FILE = 'pending-tags.json'


def _pending_path(repo: Repository) -> Path:
    return repo.store.dir / 'stockroom' / PENDING_FILE


def _load(repo: Repository) -> dict[str, Any]:
    try:
        data = json.loads(_pending_path(repo).read_text(encoding='utf-8'))
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def pending_tags(repo: Repository, branch: str) -> dict[str, PropertyValue]:
    """Tags set for the next commit on ``branch``."""
    data = _load(repo)
    if data.get('branch') != branch:
        return {}
    return dict(data.get('tags') or {})


def save_pending_tags(repo: Repository, branch: str, tags: dict[str, PropertyValue]) -> None:
    """Replace the pending tags (atomically; call with the writer lock held)."""
    path = _pending_path(repo)
    if not tags:
        clear_pending_tags(repo)
        return
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f'.{PENDING_FILE}.{os.getpid()}.tmp')
    tmp.write_text(json.dumps({'branch': branch, 'tags': tags}, indent=1), encoding='utf-8')
    os.replace(tmp, path)


def clear_pending_tags(repo: Repository) -> None:
    _pending_path(repo).unlink(missing_ok=True)


class Tag(MutableMapping[str, PropertyValue]):
    """``stock.tag['epochs'] = 1000``: typed tags (bool, int, float, str) of the next stock commit."""

    def __init__(self, stock: StockRoom) -> None:
        self._stock = stock

    def committed(self) -> dict[str, PropertyValue]:
        """The tags of the commit head.stock names."""
        with self._stock._reading() as co:
            return co.commit_properties if co is not None else {}

    def pending(self) -> dict[str, PropertyValue]:
        """The tags set for the next commit (not committed yet)."""
        if self._stock.read_only:
            return {}
        return pending_tags(self._stock.repository, self._stock.branch)

    def _all(self) -> dict[str, PropertyValue]:
        return {**self.committed(), **self.pending()}

    def __getitem__(self, key: str) -> PropertyValue:
        tags = self._all()
        if key not in tags:
            known = ', '.join(sorted(tags)) or 'none'
            raise KeyError(
                f'no tag {key!r} on the commit head.stock names or set for the next one (tags: {known})'
            )
        return tags[key]

    def __setitem__(self, key: str, value: PropertyValue) -> None:
        name, checked = normalize_property(key, value)
        stock = self._stock
        with stock._writing():
            tags = pending_tags(stock.repository, stock.branch)
            tags[name] = checked
            save_pending_tags(stock.repository, stock.branch, tags)

    def update_tags(self, tags: dict[str, Any]) -> None:
        """Set many tags at once: all of them, or none if one is bad."""
        checked = dict(normalize_property(k, v) for k, v in tags.items())
        stock = self._stock
        with stock._writing():
            current = pending_tags(stock.repository, stock.branch)
            save_pending_tags(stock.repository, stock.branch, {**current, **checked})

    def __delitem__(self, key: str) -> None:
        stock = self._stock
        with stock._writing():
            tags = pending_tags(stock.repository, stock.branch)
            if key not in tags:
                if key in self.committed():
                    raise InvalidProperty(
                        f'tag {key!r} belongs to commit {stock.head[:12]}, which cannot change; the next '
                        'commit starts without it anyway'
                    )
                raise KeyError(f'no tag {key!r} is set for the next commit')
            del tags[key]
            save_pending_tags(stock.repository, stock.branch, tags)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._all()))

    def __len__(self) -> int:
        return len(self._all())

    def __contains__(self, key: object) -> bool:
        return key in self._all()

    def __repr__(self) -> str:
        return f'<Tag shelf: committed {self.committed()!r}, next commit {self.pending()!r}>'
