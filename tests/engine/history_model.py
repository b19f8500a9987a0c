"""A plain-dict model of a repository's contents, for the diff and merge tests (issue 3).

A state is a dict of *cells*: ``(column, key) -> value``, with ``column`` one of

- ``FLAT`` ('images'): a flat ndarray column, value ``v`` stored as ``np.array([v, v], uint8)``;
- ``NESTED`` ('scans'): a nested str column, key ``(sample, subsample)``;
- ``None``: metadata, key a metadata key.

So a cell is exactly what a ``Conflict`` names as ``(column, key)``, and a model conflict is
``(column, key, kind)``. The model's merge is the rule of the issue, written for dicts.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from hangarfs import NothingToCommit, Repository
from tests.helpers import USER, release_repositories

# the property tests over random histories (test_diff.py, test_merge.py)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

FLAT = 'images'
NESTED = 'scans'
MARKER = object()  # a value in conflict in a virtual merge base: equal to no real value

Cell = tuple[Any, Any]
State = dict[Cell, Any]
Op = tuple[Cell, Any]  # value None deletes

FLAT_KEYS = [0, 1, 2, 3, 'a', '3']
NESTED_KEYS = [(s, sub) for s in ('p', 'q', 7) for sub in ('x', 'y', 1)]
META_KEYS = ['m1', 'm2', 'm3']

flat_cells = st.sampled_from([(FLAT, k) for k in FLAT_KEYS])
nested_cells = st.sampled_from([(NESTED, k) for k in NESTED_KEYS])
meta_cells = st.sampled_from([(None, k) for k in META_KEYS])
cells = st.one_of(flat_cells, nested_cells, meta_cells)
small_values = st.integers(0, 2)  # few values, so that both sides often make the same change
ops = st.lists(st.tuples(cells, st.one_of(st.none(), small_values)), max_size=8)
states = st.dictionaries(cells, small_values, max_size=10)


# ---------------------------------------------------------------------------------------- repository


class ScratchRepositories:
    """A fresh repository per hypothesis example (tmp_path is per test).

    Making one releases and deletes the one before: every open repository holds two LMDB maps of
    1 TiB of address space until released, so a test of many examples must not keep them all.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.current: Path | None = None

    def new(self) -> Repository:
        self.close()
        self.current = Path(tempfile.mkdtemp(prefix=self.prefix))
        repo = Repository(self.current / 'repo', exists=False)
        repo.init(**USER)
        return repo

    def close(self) -> None:
        if self.current is not None:
            release_repositories(self.current)
            shutil.rmtree(self.current, ignore_errors=True)
            self.current = None


def stored(column: Any, value: int) -> Any:
    if column == FLAT:
        return np.array([value, value], dtype=np.uint8)
    return f'v{value}'


def add_columns(co: Any) -> None:
    co.add_ndarray_column(FLAT, shape=(2,), dtype=np.uint8)
    co.add_str_column(NESTED, contains_subsamples=True)


def apply_ops(co: Any, changes: Iterable[Op], model: State) -> None:
    """Apply changes to a writer checkout and to ``model`` (deleting an absent cell is skipped)."""
    for (column, key), value in changes:
        cell = (column, key)
        if value is None:
            if cell not in model:
                continue
            del model[cell]
            if column is None:
                del co.metadata[key]
            else:
                del co[column][key]
        else:
            model[cell] = value
            if column is None:
                co.metadata[key] = stored(None, value)
            else:
                co[column][key] = stored(column, value)


def read_state(co: Any) -> State:
    state: State = {}
    for key, arr in co[FLAT].items():
        assert arr.dtype == np.uint8 and arr.shape == (2,) and arr[0] == arr[1]
        state[(FLAT, key)] = int(arr[0])
    for key, sample in co[NESTED].items():
        for sub, text in sample.items():
            state[(NESTED, (key, sub))] = int(text[1:])
    for key, text in co.metadata.items():
        state[(None, key)] = int(text[1:])
    return state


def commit_ops(repo: Repository, branch: str, changes: Sequence[Op], model: State, message: str) -> str:
    """Apply ``changes`` on ``branch`` and commit; returns the new head (the old one if nothing changed)."""
    with closing(repo.checkout(write=True, branch=branch)) as co:
        apply_ops(co, changes, model)
        try:
            return co.commit(message)
        except NothingToCommit:
            co.reset_staging_area(force=True)
            return co.commit_hash


def state_at(repo: Repository, ref: str) -> State:
    with closing(repo.checkout(commit=ref)) as co:
        return read_state(co)


def new_repository_with(repo: Repository, base: State) -> str:
    """Create the two columns, write ``base``, commit on master; returns the commit."""
    with closing(repo.checkout(write=True)) as co:
        add_columns(co)
        apply_ops(co, list(base.items()), {})
        return co.commit('base')


def diverge(
    repo: Repository, base: State, ours: Sequence[Op], theirs: Sequence[Op]
) -> tuple[str, str, str, State, State]:
    """``base`` committed on master, then ``ours`` on master and ``theirs`` on a new branch dev.

    Returns the three commits (base, master, dev) and the models of master and dev.
    """
    first = new_repository_with(repo, base)
    repo.create_branch('dev')
    master_model, dev_model = dict(base), dict(base)
    m = commit_ops(repo, 'master', ours, master_model, 'ours')
    d = commit_ops(repo, 'dev', theirs, dev_model, 'theirs')
    return first, m, d, master_model, dev_model


# ---------------------------------------------------------------------------------------- model


def model_diff(a: State, b: State) -> dict[Any, dict[str, set[Any]]]:
    """{column or None: {'added', 'deleted', 'mutated': keys}} from ``a`` to ``b``."""
    out: dict[Any, dict[str, set[Any]]] = {
        c: {'added': set(), 'deleted': set(), 'mutated': set()} for c in (FLAT, NESTED, None)
    }
    for cell in set(a) | set(b):
        column, key = cell
        if cell not in a:
            out[column]['added'].add(key)
        elif cell not in b:
            out[column]['deleted'].add(key)
        elif a[cell] != b[cell]:
            out[column]['mutated'].add(key)
    return out


def result_as_model(result: Any) -> dict[Any, dict[str, set[Any]]]:
    """A DiffResult in the shape of ``model_diff``."""

    def sets(ch: Any) -> dict[str, set[Any]]:
        return {'added': set(ch.added), 'deleted': set(ch.deleted), 'mutated': set(ch.mutated)}

    return {
        FLAT: sets(result.columns[FLAT]),
        NESTED: sets(result.columns[NESTED]),
        None: sets(result.metadata),
    }


def conflict_kind(b: Any, o: Any, t: Any) -> str:
    if b is None:
        return 'add/add'
    if o is None:
        return 'delete/mutate'
    if t is None:
        return 'mutate/delete'
    return 'mutate/mutate'


def model_merge(
    base: State, ours: State, theirs: State, strategy: str | None = None, virtual: bool = False
) -> tuple[State, set[tuple[Any, Any, str]]]:
    """The merged state and the conflicts, by the issue's rule, cell by cell."""
    merged: State = {}
    conflicts: set[tuple[Any, Any, str]] = set()
    for cell in set(base) | set(ours) | set(theirs):
        b, o, t = base.get(cell), ours.get(cell), theirs.get(cell)
        if o == t or t == b:
            value = o
        elif o == b:
            value = t
        elif virtual:
            value = MARKER
        else:
            conflicts.add((cell[0], cell[1], conflict_kind(b, o, t)))
            value = t if strategy == 'theirs' else o
        if value is not None:
            merged[cell] = value
    return merged, conflicts


# ---------------------------------------------------------------------------------------- history


class ModelHistory:
    """Commits as model states and parent lists; merge bases by the definition (brute force)."""

    def __init__(self) -> None:
        self.states: dict[str, State] = {}
        self.parents: dict[str, tuple[str, ...]] = {}

    def add(self, commit: str, parents: Sequence[str], state: State) -> None:
        self.states[commit] = dict(state)
        self.parents[commit] = tuple(parents)

    def ancestors(self, heads: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(heads)
        while todo:
            c = todo.pop()
            if c not in seen:
                seen.add(c)
                todo.extend(self.parents[c])
        return seen

    def merge_bases(self, ours: Iterable[str], theirs: Iterable[str]) -> list[str]:
        common = self.ancestors(ours) & self.ancestors(theirs)
        return sorted(
            c for c in common if not any(c in self.ancestors(self.parents[d]) for d in common if d != c)
        )

    def base_state(self, bases: list[str]) -> State:
        """The recursive (virtual) merge base, as the engine documents it."""
        if not bases:
            return {}
        acc = self.states[bases[0]]
        heads = [bases[0]]
        for other in bases[1:]:
            inner = self.base_state(self.merge_bases(heads, [other]))
            acc, _ = model_merge(inner, acc, self.states[other], virtual=True)
            heads.append(other)
        return acc
