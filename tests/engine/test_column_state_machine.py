"""Columns against plain dicts: hypothesis state machines that write, delete, commit and reopen.

Each example is a fresh repository on disk. The model is what the writer should show (a dict), what
the last commit holds, and every earlier commit; any difference is a bug.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hangarfs import NothingToCommit, Repository, SampleNotFound
from hangarfs.engine.keys import key_sort_order
from tests.helpers import USER, release_repositories

SETTINGS = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KEYS = st.sampled_from([0, 1, 2, 5, '5', 17, 255, 256, 2**40, 'a', 'b', 'z-1', 'Z.2'])
SUBKEYS = st.sampled_from(['axial', 'coronal', 0, 1, '1'])
META_KEYS = st.sampled_from(['source', 'license', 'a.b'])
MAX_LEN = 4096
ARRAYS = st.integers(0, 6).flatmap(lambda n: hnp.arrays(np.uint8, (n,)))
BULK_KEYS = range(1000, 1260)  # 260 samples of 4 KiB: over 1 MiB, so they go to a collection file


def bulk_values(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (len(BULK_KEYS), MAX_LEN), dtype=np.uint8)


def same_arrays(a: dict[Any, np.ndarray], b: dict[Any, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and np.array_equal(a[k], b[k]) for k in a)


def ordered(keys: Any) -> list[Any]:
    return sorted(keys, key=key_sort_order)


class RepositoryMachine(RuleBasedStateMachine):
    """What the flat and nested machines share: a repository in a temporary directory, commit, reopen."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix='hangarfs-machine-'))
        self.repo = Repository(self.tmp / 'repo', exists=False)
        self.repo.init(**USER)
        self.co: Any = None
        self.commits: list[tuple[str, Any, dict[str, str]]] = []
        self.meta: dict[str, str] = {}
        self.committed_meta: dict[str, str] = {}

    def teardown(self) -> None:
        if self.co is not None:
            self.co.close()
        release_repositories(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # subclasses: the column, a copy of the model, model equality, and reading a checkout into a model
    def column(self) -> Any:
        return self.co[self.name]

    def copy(self, model: Any) -> Any:
        raise NotImplementedError

    def same(self, a: Any, b: Any) -> bool:
        raise NotImplementedError

    def read_model(self, co: Any) -> Any:
        raise NotImplementedError

    name = 'c'
    model: Any
    committed: Any

    @rule(key=KEYS)
    def delete_sample(self, key: Any) -> None:
        """Delete a whole sample (in a nested column, with all its subsamples)."""
        col = self.column()
        if key in self.model:
            del col[key]
            del self.model[key]
        else:
            with pytest.raises(SampleNotFound):
                del col[key]

    @rule(key=META_KEYS, value=st.text(max_size=6))
    def set_metadata(self, key: str, value: str) -> None:
        self.co.metadata[key] = value
        self.meta[key] = value

    @rule(key=META_KEYS)
    def delete_metadata(self, key: str) -> None:
        if key in self.meta:
            del self.co.metadata[key]
            del self.meta[key]
        else:
            with pytest.raises(KeyError):
                del self.co.metadata[key]

    @rule()
    def commit(self) -> None:
        if self.same(self.model, self.committed) and self.meta == self.committed_meta:
            with pytest.raises(NothingToCommit):
                self.co.commit('nothing changed')
            return
        digest = self.co.commit(f'commit {len(self.commits)}')
        self.committed = self.copy(self.model)
        self.committed_meta = dict(self.meta)
        self.commits.append((digest, self.committed, self.committed_meta))

    @rule()
    def reopen(self) -> None:
        """Close the writer and open a new one through a new Repository: staged changes persist."""
        self.co.close()
        self.repo = Repository(self.repo.path)
        self.co = self.repo.checkout(write=True)

    @rule()
    def reset(self) -> None:
        self.co.reset_staging_area(force=True)
        self.model = self.copy(self.committed)
        self.meta = dict(self.committed_meta)

    @precondition(lambda self: bool(self.commits))
    @rule(data=st.data())
    def read_a_commit(self, data: st.DataObject) -> None:
        digest, expected, meta = data.draw(st.sampled_from(self.commits))
        with closing(self.repo.checkout(commit=digest)) as co:
            assert self.same(self.read_model(co), expected)
            assert dict(co.metadata.items()) == meta

    @precondition(lambda self: bool(self.commits))
    @rule()
    def read_the_branch(self) -> None:
        with closing(self.repo.checkout()) as co:
            assert co.commit_hash == self.commits[-1][0]
            assert self.same(self.read_model(co), self.committed)
            assert dict(co.metadata.items()) == self.committed_meta

    @invariant()
    def metadata_matches(self) -> None:
        if self.co is not None:
            assert dict(self.co.metadata.items()) == self.meta
            assert list(self.co.metadata) == sorted(self.meta)


class FlatColumnMachine(RepositoryMachine):
    @initialize(backend=st.sampled_from(['lmdb', 'numpy', 'hdf5']))
    def open_column(self, backend: str) -> None:
        self.co = self.repo.checkout(write=True)
        self.co.add_ndarray_column(
            self.name, shape=(MAX_LEN,), dtype=np.uint8, variable_shape=True, backend=backend
        )
        self.model: dict[Any, np.ndarray] = {}
        self.committed: dict[Any, np.ndarray] = {}
        self.commits.append((self.co.commit('an empty column'), {}, {}))

    def copy(self, model: Any) -> Any:
        return dict(model)

    def same(self, a: Any, b: Any) -> bool:
        return same_arrays(a, b)

    def read_model(self, co: Any) -> Any:
        return dict(co[self.name].items())

    @rule(key=KEYS, value=ARRAYS)
    def set(self, key: Any, value: np.ndarray) -> None:
        self.column()[key] = value
        self.model[key] = value

    @rule(items=st.dictionaries(KEYS, ARRAYS, max_size=5))
    def set_in_a_with_block(self, items: dict[Any, np.ndarray]) -> None:
        col = self.column()
        with col:
            for key, value in items.items():
                col[key] = value
                assert np.array_equal(col[key], value)
        self.model.update(items)

    @rule(items=st.dictionaries(KEYS, ARRAYS, max_size=5))
    def update(self, items: dict[Any, np.ndarray]) -> None:
        self.column().update(items)
        self.model.update(items)

    @rule(seed=st.integers(0, 3))
    def bulk_write(self, seed: int) -> None:
        values = bulk_values(seed)
        self.column().update_batch(list(BULK_KEYS), list(values))
        self.model.update(zip(BULK_KEYS, values))

    @rule(key=KEYS)
    def pop(self, key: Any) -> None:
        got = self.column().pop(key, None)
        want = self.model.pop(key, None)
        assert (got is None and want is None) or np.array_equal(got, want)

    @rule(data=st.data())
    def get_batch(self, data: st.DataObject) -> None:
        if not self.model:
            return
        keys = data.draw(st.lists(st.sampled_from(sorted(self.model, key=key_sort_order)), max_size=6))
        got = self.column().get_batch(keys)
        assert len(got) == len(keys) and all(np.array_equal(g, self.model[k]) for g, k in zip(got, keys))

    @rule()
    def read_every_sample(self) -> None:
        assert same_arrays(dict(self.column().items()), self.model)

    @invariant()
    def keys_and_length_match(self) -> None:
        if self.co is None:
            return
        col = self.column()
        assert list(col.keys()) == ordered(self.model)
        assert len(col) == len(self.model)
        for key in ('a', 5, 256):
            assert (key in col) == (key in self.model)
            if key in self.model:
                assert np.array_equal(col[key], self.model[key])


class NestedColumnMachine(RepositoryMachine):
    @initialize()
    def open_column(self) -> None:
        self.co = self.repo.checkout(write=True)
        self.co.add_str_column(self.name, contains_subsamples=True)
        self.model: dict[Any, dict[Any, str]] = {}
        self.committed: dict[Any, dict[Any, str]] = {}
        self.commits.append((self.co.commit('an empty column'), {}, {}))

    def copy(self, model: Any) -> Any:
        return {k: dict(v) for k, v in model.items()}

    def same(self, a: Any, b: Any) -> bool:
        return bool(a == b)

    def read_model(self, co: Any) -> Any:
        return {k: dict(sample.items()) for k, sample in co[self.name].items()}

    @rule(key=KEYS, subkey=SUBKEYS, value=st.text(max_size=8))
    def set_subsample(self, key: Any, subkey: Any, value: str) -> None:
        self.column()[key, subkey] = value
        self.model.setdefault(key, {})[subkey] = value

    @rule(key=KEYS, sample=st.dictionaries(SUBKEYS, st.text(max_size=8), max_size=3))
    def set_sample(self, key: Any, sample: dict[Any, str]) -> None:
        self.column()[key] = sample  # adds to (and overwrites within) the sample
        if sample:
            self.model.setdefault(key, {}).update(sample)

    @rule(key=KEYS, subkey=SUBKEYS, value=st.text(max_size=8))
    def set_through_the_sample(self, key: Any, subkey: Any, value: str) -> None:
        if key not in self.model:
            return
        self.column()[key][subkey] = value
        self.model[key][subkey] = value

    @rule(
        samples=st.dictionaries(KEYS, st.dictionaries(SUBKEYS, st.text(max_size=4), min_size=1), max_size=3)
    )
    def update_in_a_with_block(self, samples: dict[Any, dict[Any, str]]) -> None:
        col = self.column()
        with col:
            col.update(samples)
        for key, sample in samples.items():
            self.model.setdefault(key, {}).update(sample)

    @rule(key=KEYS, subkey=SUBKEYS)
    def delete_subsample(self, key: Any, subkey: Any) -> None:
        col = self.column()
        if subkey in self.model.get(key, {}):
            del col[key, subkey]
            del self.model[key][subkey]
            if not self.model[key]:
                del self.model[key]  # a sample with no subsamples is gone
        else:
            with pytest.raises(SampleNotFound):
                del col[key, subkey]

    @rule(key=KEYS)
    def pop_sample(self, key: Any) -> None:
        assert self.column().pop(key, None) == self.model.pop(key, None)

    @invariant()
    def samples_match(self) -> None:
        if self.co is None:
            return
        col = self.column()
        assert list(col.keys()) == ordered(self.model)
        assert len(col) == len(self.model)
        assert col.num_subsamples == sum(len(s) for s in self.model.values())
        for key, sample in self.model.items():
            assert key in col
            assert list(col[key].keys()) == ordered(sample)
            assert dict(col[key].items()) == sample
            assert len(col[key]) == len(sample)
        for key in ('a', 5):
            if key not in self.model:
                assert key not in col
                with pytest.raises(SampleNotFound):
                    col[key]


TestFlatColumn = FlatColumnMachine.TestCase
TestFlatColumn.settings = SETTINGS
TestNestedColumn = NestedColumnMachine.TestCase
TestNestedColumn.settings = SETTINGS
