"""What the staging area holds, read without becoming the writer (``hangarfs status``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hangarfs.engine.lock import WriterLock
from hangarfs.engine.staging import SET, StagingArea
from hangarfs.engine.store import RepoStore

DEFAULT_BRANCH = 'master'


@dataclass(frozen=True)
class StagingStatus:
    """The writer's branch and head, who holds the writer lock, and the staged changes."""

    branch: str
    head: str  # '' when the branch has no commit yet
    lock_holder: dict[str, Any] | None
    schemas: dict[str, str]  # column -> 'removed' | 'added or changed schema'
    samples: dict[str, tuple[int, int]]  # column -> (written, deleted)
    metadata: int  # metadata keys changed

    @property
    def clean(self) -> bool:
        return not (self.schemas or self.samples or self.metadata)


def staging_status(store: RepoStore) -> StagingStatus:
    staging = StagingArea(store)
    branch = staging.info().branch or DEFAULT_BRANCH
    schemas = {
        name: 'removed' if schema is None else 'added or changed schema'
        for name, schema in sorted(staging.schemas().items())
    }
    samples = {}
    for name in sorted(staging.staged_columns()):
        sets = dels = 0
        for _, v in staging.iter_prefix(name.encode() + b'\x00'):
            if v[:1] == SET:
                sets += 1
            else:
                dels += 1
        samples[name] = (sets, dels)
    return StagingStatus(
        branch=branch,
        head=store.branch_head(branch) or '',
        lock_holder=WriterLock(store.lock_path, store.path).is_locked_by_other(),
        schemas=schemas,
        samples=samples,
        metadata=len(staging.meta()),
    )
