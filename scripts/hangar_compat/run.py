#!/usr/bin/env python3
"""Run Hangar 0.5.2's own public-API tests against hangarfs.

Hangar's test files are exported at run time from a git copy of tensorwerk/hangar-py (nothing of
Hangar's is kept in this repository) into a temporary directory, where ``hangar`` becomes
``hangarfs`` in imports and module references. With ``--literal`` that is all; by default two more
things are done, neither of which touches a test's assertions:

- Lines that set tuning knobs of Hangar's own internals are dropped: collection-file sizes of its
  hdf5_00/hdf5_01/numpy_10 modules, LMDB map sizes in hangar.constants, its transaction registry,
  and the closing of environments through the private ``repo._env`` (conftest.py and one fixture of
  test_column_nested.py). hangarfs has none of these knobs; with them, every test using those
  fixtures fails before it starts, saying nothing about the API.
- numpy's aliases ``np.int``, ``np.float``, ``np.bool`` (removed in numpy 1.24; Hangar 0.5.2's tests
  use them) are restored for the test process.

The run then calls pytest there with the project's interpreter and prints a table (and, with
--json, a JSON file) of outcomes per file.

Usage:
  .venv/bin/python scripts/hangar_compat/run.py [--hangar-git DIR] [--ref v0.5.2] [--files a.py,b.py]
                                              [--json out.json] [--keep DIR] [-- PYTEST ARGS]

``--hangar-git`` is a git directory of tensorwerk/hangar-py (default: $HANGAR_GIT, else
/work/.mirror/tensorwerk+hangar-py/repo); ``git clone --bare https://github.com/tensorwerk/hangar-py``
makes one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

DEFAULT_GIT = '/work/.mirror/tensorwerk+hangar-py/repo'

# Hangar's tests of its public API (Repository, checkouts, columns, diff, merge, branches). Left out:
# its CLI (a different command line), its gRPC remote server and wire format, its typesystem,
# optimized_utils, utils, version-migration and visualization modules, and the HDF5 backend file
# internals; each of those imports modules that exist only inside Hangar.
PUBLIC_API_FILES = [
    'test_branching.py',
    'test_checkout.py',
    'test_checkout_arrayset_access.py',
    'test_column.py',
    'test_column_backends.py',
    'test_column_definition_permutations.py',
    'test_column_nested.py',
    'test_column_pickle.py',
    'test_context_management.py',
    'test_diff.py',
    'test_diff_staged_summary.py',
    'test_initiate.py',
    'test_merging.py',
    'test_repo_integrity_verification.py',
    'test_commit_ref_verification.py',
    'property_based/test_pbt_column_flat.py',
    'property_based/test_pbt_column_nested.py',
]
SUPPORT_FILES = ['conftest.py', 'property_based/conftest.py']

# Lines that tune or reach into Hangar's internals (see the module docstring): in conftest.py, and in
# any test file.
_CONFTEST_TUNING = re.compile(
    r'hangarfs\.(backends|constants|txnctx)\.'
    r'|\._env\._close_environments'
    r'|^\s*old\w*\s*=\s*hangarfs\.'
)
_FIXTURE_TUNING = re.compile(
    r'^\s*from hangarfs\.backends import (hdf5_00|hdf5_01|numpy_10)\s*$'
    r"|^\s*monkeypatch\.setattr\((hdf5_00|hdf5_01|numpy_10), 'COLLECTION_(COUNT|SIZE)', \d+\)\s*$"
)
_NUMPY_ALIASES = """

# Added by scripts/hangar_compat/run.py: numpy 1.24 removed aliases Hangar 0.5.2's tests use.
import numpy as _np_for_aliases  # noqa: E402
for _alias, _builtin in (('int', int), ('float', float), ('bool', bool)):
    if _alias not in _np_for_aliases.__dict__:
        setattr(_np_for_aliases, _alias, _builtin)
"""
_IMPORT_LINE = re.compile(r'^(\s*)(from|import)\s+hangar\b(?!fs)')


def rename(text: str) -> str:
    """``hangar`` -> ``hangarfs`` in import statements and dotted module references."""
    out = []
    for line in text.splitlines(keepends=True):
        if _IMPORT_LINE.match(line):
            line = re.sub(r'\bhangar\b(?!fs)', 'hangarfs', line)
        else:
            line = re.sub(r'(?<![\w.\'"/])hangar\.(?=[A-Za-z_])', 'hangarfs.', line)
        out.append(line)
    return ''.join(out)


def strip_internal_tuning(text: str, *, conftest: bool) -> str:
    lines = text.splitlines(keepends=True)
    drop = [_FIXTURE_TUNING, _CONFTEST_TUNING] if conftest else [_FIXTURE_TUNING]
    return ''.join(ln for ln in lines if not any(p.search(ln) for p in drop))


def export(git_dir: str, ref: str, paths: list[str], dest: Path, literal: bool) -> None:
    for rel in paths:
        blob = subprocess.run(
            ['git', f'--git-dir={git_dir}', 'show', f'{ref}:tests/{rel}'],
            check=True,
            capture_output=True,
        ).stdout.decode()
        text = rename(blob)
        if not literal:
            text = strip_internal_tuning(text, conftest=rel == 'conftest.py')
            if rel == 'conftest.py':
                text += _NUMPY_ALIASES
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def summarize(junit: Path) -> dict[str, dict[str, int]]:
    """Outcome counts per test file, from pytest's JUnit XML."""
    per_file: dict[str, dict[str, int]] = {}
    for case in ET.parse(junit).getroot().iter('testcase'):
        parts = case.get('classname', '').split('.')
        mods = [i for i, p in enumerate(parts) if p.startswith('test_')]
        fname = '/'.join(parts[: mods[0] + 1]) + '.py' if mods else case.get('classname', '?')
        outcome = 'passed'
        for tag, name in (('skipped', 'skipped'), ('failure', 'failed'), ('error', 'error')):
            if case.find(tag) is not None:
                outcome = name
        row = per_file.setdefault(fname, {'passed': 0, 'failed': 0, 'error': 0, 'skipped': 0})
        row[outcome] += 1
    return per_file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--hangar-git', default=os.environ.get('HANGAR_GIT', DEFAULT_GIT))
    ap.add_argument('--ref', default='v0.5.2')
    ap.add_argument('--files', default='', help='comma-separated test files (default: the public-API set)')
    ap.add_argument('--json', default='', help='write the per-file counts here')
    ap.add_argument('--literal', action='store_true', help='only rename hangar -> hangarfs')
    ap.add_argument('--keep', default='', help='export into this directory and keep it')
    ap.add_argument('pytest_args', nargs='*')
    args = ap.parse_args()
    if not Path(args.hangar_git).exists():
        print(f'no git copy of hangar-py at {args.hangar_git}; pass --hangar-git', file=sys.stderr)
        return 2
    files = [f for f in args.files.split(',') if f] or PUBLIC_API_FILES
    with tempfile.TemporaryDirectory(prefix='hangar-compat-') as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        export(args.hangar_git, args.ref, SUPPORT_FILES + files, root, args.literal)
        (root / 'pytest.ini').write_text('[pytest]\naddopts = -ra -p no:cacheprovider\ntimeout = 300\n')
        junit = root / 'junit.xml'
        env = {**os.environ, 'PYTHONPATH': str(root)}
        cmd = [sys.executable, '-m', 'pytest', '-q', f'--junitxml={junit}', *files, *args.pytest_args]
        rc = subprocess.run(cmd, cwd=root, env=env).returncode
        if not junit.exists():
            return rc or 1
        per_file = summarize(junit)
    total = {k: sum(r[k] for r in per_file.values()) for k in ('passed', 'failed', 'error', 'skipped')}
    print(f'\n{"file":<44} {"passed":>7} {"failed":>7} {"error":>7} {"skipped":>8}')
    for fname, r in [*sorted(per_file.items()), ('total', total)]:
        print(f'{fname:<44} {r["passed"]:>7} {r["failed"]:>7} {r["error"]:>7} {r["skipped"]:>8}')
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {'ref': args.ref, 'literal': args.literal, 'files': per_file, 'total': total}, indent=1
            )
        )
    return rc


if __name__ == '__main__':
    sys.exit(main())
