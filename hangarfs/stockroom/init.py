"""Making a stock: the hangarfs repository, ``head.stock`` and the ``.gitignore`` entry for the store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hangarfs.engine.repository import Repository
from hangarfs.stockroom.pointer import (
    DEFAULT_BRANCH,
    POINTER_FILE,
    Pointer,
    ensure_gitignored,
    git_config,
    read_pointer,
    write_pointer,
)


@dataclass(frozen=True)
class InitResult:
    root: Path
    created_repository: bool
    created_pointer: bool
    added_gitignore: bool


def init_repo(
    name: str | None = None,
    email: str | None = None,
    overwrite: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> InitResult:
    """Init the hangarfs repository (kept if one exists, unless ``overwrite``), create head.stock and add
    the store to .gitignore. ``name``/``email`` default to git's user.name/user.email. Works with or
    without git."""
    root = Path(path or Path.cwd()).resolve()
    repo = Repository(root, exists=False)
    created = False
    if overwrite or not repo.initialized:
        name = name or git_config(root, 'user.name')
        email = email or git_config(root, 'user.email')
        if not name or not email:
            raise ValueError(
                'stock init needs an author for commits: pass name and email (`stock init --name "Ada" '
                '--email ada@example.org`), or set git config user.name and user.email'
            )
        repo.init(user_name=name, user_email=email, remove_old=overwrite)
        created = True
    pointer = read_pointer(root)
    created_pointer = pointer is None or overwrite
    if created_pointer:
        write_pointer(root, Pointer(repo.store.refs.branch_head(DEFAULT_BRANCH) or '', DEFAULT_BRANCH))
    added = ensure_gitignored(root)
    return InitResult(root, created, created_pointer, added)


__all__ = ['POINTER_FILE', 'InitResult', 'init_repo']
