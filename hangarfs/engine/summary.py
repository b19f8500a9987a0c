"""``repo.summary()``: what a repository holds at a ref, as a dict or as printed text; its size."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from hangarfs.backends import backend_name
from hangarfs.engine.history import iter_ancestors
from hangarfs.engine.store import RepoStore


def summarize(store: RepoStore, path: str, ref: str, branches: list[str]) -> dict[str, Any]:
    """The summary of ``ref`` (a branch, tag or commit) as a dict (``summary(return_contents=True)``)."""

    def parents(commit: str) -> tuple[str, ...]:
        return store.objects.commit(commit).parents

    resolved = store.refs.resolve(ref)
    head = resolved.commit
    snap = store.objects.snapshot(head)
    ncommits = sum(1 for _ in iter_ancestors(parents, [head])) if head else 0
    disk = dir_size(store.dir)
    info: dict[str, Any] = {
        'path': path,
        'disk_bytes': disk,
        'branch': resolved.branch,
        'commit': head,
        'commits': ncommits,
        'branches': branches,
        'columns': {
            name: {
                'kind': st.schema.kind,
                'layout': st.schema.layout,
                'dtype': st.schema.dtype,
                'shape': st.schema.shape,
                'variable_shape': st.schema.variable_shape,
                'backend': backend_name(st.schema.backend),
                'samples': st.count,
            }
            for name, st in sorted(snap.columns.items())
        },
        'metadata_keys': snap.metadata_count,
    }
    if head:
        rec = store.objects.commit(head)
        info['last_commit'] = {'message': rec.message, 'author': rec.author, 'time': rec.time}
    return info


def format_bytes(n: float) -> str:
    """'1.00 B', '1.23 kB', '12.35 MB', '1.23 GB' ... (powers of 1000)."""
    for unit in ('B', 'kB', 'MB', 'GB', 'TB'):
        if n < 1000:
            return f'{n:.2f} {unit}'
        n /= 1000
    return f'{n:.2f} PB'


def dir_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def format_summary(info: dict[str, Any]) -> str:
    lines = [
        'Summary of Contents',
        '===================',
        f'Repository     : {info["path"]}',
        f'Disk usage     : {info["disk_bytes"] / 1e6:.2f} MB',
        f'Commit         : {info["commit"][:12] or "(none)"}'
        + (f' (branch {info["branch"]})' if info['branch'] else ''),
        f'Commits        : {info["commits"]}',
        f'Branches       : {", ".join(info["branches"])}',
    ]
    if 'last_commit' in info:
        lc = info['last_commit']
        lines.append(
            f'Last commit    : {lc["message"]!r} by {lc["author"]}, '
            f'{time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lc["time"]))}'
        )
    lines += ['', f'Columns ({len(info["columns"])})', '-----------']
    if not info['columns']:
        lines.append('  (none)')
    for name, c in info['columns'].items():
        if c['kind'] == 'ndarray' and c['dtype'] is None:
            what = 'heterogeneous (dtype and shape per sample)'
        elif c['kind'] == 'ndarray':
            what = f'{np.dtype(c["dtype"]).name}{list(c["shape"])}' + (
                ' variable' if c['variable_shape'] else ''
            )
        else:
            what = c['kind']
        nested = ' nested' if c['layout'] == 'nested' else ''
        lines.append(f'  {name:<20} {c["samples"]:>10} samples  {what}{nested}  backend={c["backend"]}')
    lines.append(f'\nMetadata keys  : {info["metadata_keys"]}')
    return '\n'.join(lines)
