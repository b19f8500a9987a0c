"""Diff (issue 3): what changed between two commits, or in the staging area, at the cost of the change."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import numpy as np
import pytest
from hypothesis import given

from hangarfs import Repository
from hangarfs.engine.diff import Changes, diff_snapshots
from hangarfs.engine.tree import Node
from hangarfs.errors import AmbiguousRef, RefNotFound
from tests.engine.history_model import (
    SETTINGS,
    ScratchRepositories,
    apply_ops,
    diverge,
    model_diff,
    new_repository_with,
    ops,
    result_as_model,
    state_at,
    states,
)


class CountingSource:
    """A node source that counts the nodes a walk reads."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads = 0

    def node(self, digest: bytes) -> Node:
        self.reads += 1
        return self.inner.node(digest)


@pytest.fixture
def scratch() -> Iterator[Any]:
    repos = ScratchRepositories('hangarfs-diff-')
    yield repos.new
    repos.close()


# ---------------------------------------------------------------------------------------- against a model


@SETTINGS
@given(base=states, ours=ops, theirs=ops)
def test_diff_equals_the_models_difference(scratch: Any, base: Any, ours: Any, theirs: Any) -> None:
    repo = scratch()
    first, m, d, master_model, dev_model = diverge(repo, base, ours, theirs)
    assert state_at(repo, m) == master_model and state_at(repo, d) == dev_model
    for a, b, ma, mb in [
        (first, m, base, master_model),
        (first, 'dev', base, dev_model),
        ('master', 'dev', master_model, dev_model),
        ('dev', 'master', dev_model, master_model),
        (m, m, master_model, master_model),
    ]:
        result = repo.diff(a, b)
        assert result_as_model(result) == model_diff(ma, mb), (a, b)
        assert not result.schema_changes
        assert bool(result) == (ma != mb)


@SETTINGS
@given(base=states, staged=ops)
def test_staged_diff_equals_the_models_difference(scratch: Any, base: Any, staged: Any) -> None:
    repo = scratch()
    head = new_repository_with(repo, base)
    model = dict(base)
    with closing(repo.checkout(write=True)) as co:
        assert co.diff.status() == 'CLEAN'
        apply_ops(co, staged, model)
        result = co.diff.staged()
        assert result.a == head and result.b == ''
        assert result_as_model(result) == model_diff(base, model)
        assert co.diff.status() == ('DIRTY' if model != base else 'CLEAN')


# ---------------------------------------------------------------------------------------- examples


@pytest.fixture
def labelled(repo: Repository) -> tuple[Repository, str]:
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(4,), dtype=np.uint8).update(
            {i: np.full(4, i, np.uint8) for i in range(50)}
        )
        co.add_str_column('labels').update({i: str(i % 10) for i in range(50)})
        co.add_str_column('scans', contains_subsamples=True).update({'p1': {'axial': 'a', 'coronal': 'c'}})
        co.metadata['source'] = 'synthetic'
        first = co.commit('first')
    return repo, first


def test_a_diff_names_samples_schemas_and_metadata(labelled: tuple[Repository, str]) -> None:
    repo, first = labelled
    repo.create_branch('relabel')
    with closing(repo.checkout(write=True, branch='relabel')) as co:
        co['labels'][3] = 'seven'
        co['labels'][100] = '0'
        del co['labels'][4]
        del co['images'][0]
        co['scans']['p1', 'axial'] = 'A'
        co['scans']['p2'] = {'sagittal': 's'}
        del co['scans']['p1', 'coronal']
        co.columns.delete('images')
        co.add_bytes_column('blobs')['x'] = b'\x00'
        co['labels'].change_backend('lmdb', {})
        co.metadata['source'] = 'relabelled'
        co.metadata['who'] = 'ada'
        co.commit('relabel')
    d = repo.diff('master', 'relabel')
    assert d.a == first and d.b == repo.store.refs.branch_head('relabel')
    assert d.columns['labels'] == Changes(frozenset({100}), frozenset({4}), frozenset({3}))
    assert d.columns['images'].deleted == frozenset(range(50)) and not d.columns['images'].added
    assert d.columns['blobs'] == Changes(added=frozenset({'x'}))
    assert d.columns['scans'].added == {('p2', 'sagittal')}
    assert d.columns['scans'].deleted == {('p1', 'coronal')}
    assert d.columns['scans'].mutated == {('p1', 'axial')}
    assert d.schema_changes.added == {'blobs'} and d.schema_changes.deleted == {'images'}
    assert d.schema_changes.mutated == frozenset()  # lmdb was the default backend of str columns
    assert d.metadata == Changes(frozenset({'who'}), frozenset(), frozenset({'source'}))
    assert d.changed_columns == ['blobs', 'images', 'labels', 'scans']
    as_dict = d.to_dict()
    assert as_dict['columns']['scans']['mutated'] == [['p1', 'axial']]
    assert as_dict['columns']['labels'] == {'added': [100], 'deleted': [4], 'mutated': [3]}


def test_a_backend_change_is_a_schema_change(labelled: tuple[Repository, str]) -> None:
    repo, first = labelled
    with closing(repo.checkout(write=True)) as co:
        co['images'].change_backend('hdf5')
        second = co.commit('to hdf5')
    d = repo.diff(first, second)
    assert d.schema_changes == Changes(mutated=frozenset({'images'}))
    assert not d.columns['images']  # the samples are the same


def test_a_column_replaced_by_another_layout(labelled: tuple[Repository, str]) -> None:
    repo, first = labelled
    with closing(repo.checkout(write=True)) as co:
        co.columns.delete('labels')
        co.commit('drop labels')
        co.add_str_column('labels', contains_subsamples=True)['1'] = {'a': 'x'}
        second = co.commit('nested labels')
    d = repo.diff(first, second)
    assert d.schema_changes.mutated == {'labels'}
    assert d.columns['labels'].deleted == frozenset(range(50))
    assert d.columns['labels'].added == {('1', 'a')}


def test_same_data_written_again_is_no_change(labelled: tuple[Repository, str]) -> None:
    repo, _ = labelled
    with closing(repo.checkout(write=True)) as co:
        co['labels'][1] = '1'  # the value it had
        co['labels'][2] = 'changed'
        assert co.diff.status() == 'DIRTY'
        assert co.diff.staged().columns['labels'] == Changes(mutated=frozenset({2}))
        co['labels'][2] = '2'
        assert co.diff.status() == 'CLEAN'  # staged writes that change nothing
        assert not co.diff.staged()


def test_checkout_diff_against_other_refs(labelled: tuple[Repository, str]) -> None:
    repo, first = labelled
    repo.create_branch('dev')
    with closing(repo.checkout(write=True, branch='dev')) as co:
        co['labels'][0] = 'zero'
        dev = co.commit('dev')
        assert co.diff.commit(first).columns['labels'].mutated == {0}  # from dev's head to first
    with closing(repo.checkout(commit=first)) as co:
        assert co.diff.branch('dev').columns['labels'].mutated == {0}
        assert co.diff.commit(dev[:8]).columns['labels'].mutated == {0}
        assert not hasattr(co.diff, 'staged')
        with pytest.raises(RefNotFound, match="no branch named 'nope'"):
            co.diff.branch('nope')


def test_diff_with_a_branch_without_commits(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')['a'] = 'x'
        assert co.diff.staged().columns['s'].added == {'a'}
        assert co.diff.staged().schema_changes.added == {'s'}


# ---------------------------------------------------------------------------------------- cost


def test_a_small_diff_reads_few_tree_nodes(repo: Repository) -> None:
    """20,000 samples, 10 changed: the diff reads the paths to the changes, not the trees."""
    n = 20_000
    with closing(repo.checkout(write=True)) as co:
        col = co.add_ndarray_column('images', shape=(8,), dtype=np.uint8)
        col.update_batch(list(range(n)), np.random.default_rng(0).integers(0, 255, (n, 8), dtype=np.uint8))
        first = co.commit('ingest')
        for k in range(0, n, n // 10):
            col[k] = np.zeros(8, np.uint8)
        second = co.commit('10 changed')
    store = repo.store
    a, b = store.objects.snapshot(first), store.objects.snapshot(second)
    src = CountingSource(store.nodes)
    result = diff_snapshots(src, a, b)
    assert result.columns['images'].mutated == set(range(0, n, n // 10))
    # each change touches one path of ~4 levels on each side; a full walk would read ~2 x 1,400 nodes
    assert src.reads <= 10 * 2 * 5, src.reads
    src.reads = 0
    assert not diff_snapshots(src, a, a)
    assert src.reads == 0


# ---------------------------------------------------------------------------------------- bad input


def test_unknown_refs(labelled: tuple[Repository, str]) -> None:
    repo, first = labelled
    with pytest.raises(RefNotFound, match="no branch, tag or commit named 'nope'"):
        repo.diff('master', 'nope')
    with pytest.raises(RefNotFound):
        repo.diff('0000000000', first)
    with pytest.raises(RefNotFound):
        repo.diff('abc', first)  # too short to be a digest prefix


def test_an_ambiguous_short_digest(repo: Repository) -> None:
    """Commit until two digests share their first 4 hex digits; that prefix names neither."""
    seen: dict[str, str] = {}
    with closing(repo.checkout(write=True)) as co:
        co.add_str_column('s')
        for i in range(5000):
            co['s'][0] = str(i)
            digest = co.commit(f'commit {i}')
            if digest[:4] in seen:
                break
            seen[digest[:4]] = digest
        else:
            pytest.fail('no two of 5000 commits share a 4-digit prefix')
    prefix = digest[:4]
    with pytest.raises(AmbiguousRef, match=f"'{prefix}' is a prefix of several commits") as info:
        repo.diff(prefix, 'master')
    assert set(info.value.candidates) == {digest, seen[prefix]}
    assert repo.diff(digest[:12], seen[prefix][:12]).columns['s'].mutated == {0}


def test_no_column_named(labelled: tuple[Repository, str]) -> None:
    repo, first = labelled
    d = repo.diff(first, first)
    assert not d and set(d.columns) == {'images', 'labels', 'scans'}
    with pytest.raises(KeyError):
        d.columns['nope']
