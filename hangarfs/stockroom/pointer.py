"""The stock root and its git-tracked pointer file, ``head.stock``.

``head.stock`` says which hangarfs commit this version of the code reads, and on which branch new
commits go. Git tracks it, so ``git checkout`` of an older code commit brings back the pointer to the
data and models of that time. Its format is two lines of text (comments start with ``#``)::

    # hangarfs stock pointer (git tracks this file): the commit this version of the code reads
    commit 3f2a...            (64 hex digits; empty before the first stock commit)
    branch master

A file holding only a commit digest (the format of the original Stockroom) is read as that commit on
branch ``master``.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hangarfs.engine.store import STORE_DIR
from hangarfs.errors import StockNotFound

POINTER_FILE = 'head.stock'
DEFAULT_BRANCH = 'master'
GITIGNORE_ENTRY = f'/{STORE_DIR}/'
_HEADER = '# hangarfs stock pointer (git tracks this file): the commit this version of the code reads\n'
_DIGEST = re.compile(r'[0-9a-f]{64}\Z')


@dataclass(frozen=True)
class Pointer:
    """Where a stock reads (``commit``, '' before the first commit) and writes (``branch``).

    ``tracked`` is False for a repository without ``head.stock``: it follows its branch head.
    """

    commit: str
    branch: str
    tracked: bool = True


def parse_pointer(text: str, where: str = POINTER_FILE) -> Pointer:
    """The pointer a ``head.stock`` text describes, or ValueError saying what is wrong with it."""
    if '<<<<<<<' in text or '>>>>>>>' in text:
        raise ValueError(
            f'{where} holds git merge conflict markers: keep the one commit your merged code should read '
            f'(and its branch), delete the markers, then `git add {POINTER_FILE}`'
        )
    commit, branch = '', DEFAULT_BRANCH
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        word, _, value = line.partition(' ')
        value = value.strip()
        if _DIGEST.match(line):  # the original Stockroom's format: the digest alone
            commit = line
        elif word == 'commit' and (value == '' or _DIGEST.match(value)):
            commit = value
        elif word == 'branch' and value:
            branch = value
        else:
            raise ValueError(
                f'{where} line {number}: expected "commit <64 hex digits>" or "branch <name>", got {raw!r}'
            )
    return Pointer(commit, branch)


def format_pointer(pointer: Pointer) -> str:
    return f'{_HEADER}commit {pointer.commit}\nbranch {pointer.branch}\n'


def read_pointer(root: Path) -> Pointer | None:
    """The pointer in ``root/head.stock``, or None when the file does not exist."""
    path = root / POINTER_FILE
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        return None
    return parse_pointer(text, str(path))


def write_pointer(root: Path, pointer: Pointer) -> None:
    """Replace ``root/head.stock`` atomically (a reader sees the old or the new pointer, never half)."""
    path = root / POINTER_FILE
    tmp = root / f'.{POINTER_FILE}.{os.getpid()}.tmp'
    tmp.write_text(format_pointer(pointer), encoding='utf-8')
    os.replace(tmp, path)


def is_stock_root(path: Path) -> bool:
    return (path / POINTER_FILE).is_file() or (path / STORE_DIR).is_dir() or (path / '.git').exists()


def find_stock_root(start: Path) -> Path:
    """The nearest directory from ``start`` upwards that holds head.stock, a repository or ``.git``."""
    path = start.resolve()
    for candidate in (path, *path.parents):
        if is_stock_root(candidate):
            return candidate
    raise StockNotFound(
        f'no stock root in {path} or above it (a directory with {POINTER_FILE}, {STORE_DIR}/ or .git); '
        'run `stock init` in the root of your project, or pass the path: StockRoom(path)'
    )


def ensure_gitignored(root: Path) -> bool:
    """Add the store directory to ``root/.gitignore`` unless a line there names it; True if added."""
    gitignore = root / '.gitignore'
    text = gitignore.read_text(encoding='utf-8') if gitignore.exists() else ''
    names = {STORE_DIR, f'{STORE_DIR}/', f'/{STORE_DIR}', GITIGNORE_ENTRY}
    if any(line.strip() in names for line in text.splitlines()):
        return False
    prefix = '' if not text or text.endswith('\n') else '\n'
    with open(gitignore, 'a', encoding='utf-8') as fh:
        fh.write(f'{prefix}# hangarfs data store (head.stock, which git tracks, points into it)\n')
        fh.write(f'{GITIGNORE_ENTRY}\n')
    return True


def git_config(root: Path, key: str) -> str:
    """A git configuration value as seen from ``root`` ('' when git or the value is missing)."""
    try:
        out = subprocess.run(
            ['git', 'config', '--get', key], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ''
    return out.stdout.strip() if out.returncode == 0 else ''
