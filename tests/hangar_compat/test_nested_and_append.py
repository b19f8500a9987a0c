"""Item 8 of issue 15: nested columns and their samples behave as Hangar 0.5's nested column accessor
(``NestedSampleWriter`` / ``FlatSubsampleWriter``), and flat columns have ``append``."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import numpy as np
import pytest

from hangarfs import Repository


def arr(i: int) -> np.ndarray:
    return np.full((2, 2), i, np.uint8)


def same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(a, b)) and a.dtype == b.dtype


@pytest.fixture
def writer(repo: Repository):  # type: ignore[no-untyped-def]
    co = repo.checkout(write=True)
    yield co
    co.close()


@pytest.mark.parametrize(
    'subsamples',
    [
        lambda: {'a': arr(1), 0: arr(2)},
        lambda: [('a', arr(1)), (0, arr(2))],
        lambda: (['a', arr(1)], [0, arr(2)]),
        lambda: iter([('a', arr(1)), (0, arr(2))]),
    ],
)
def test_a_sample_is_written_from_a_mapping_or_pairs(writer, subsamples) -> None:  # type: ignore[no-untyped-def]
    col = writer.add_ndarray_column('n', prototype=arr(0), contains_subsamples=True)
    col['s'] = subsamples()
    assert same(col['s']['a'], arr(1)) and same(col['s', 0], arr(2))
    col2 = writer.add_ndarray_column('m', prototype=arr(0), contains_subsamples=True)
    col2.update({'s': subsamples()})
    col2.update([('t', subsamples())])
    assert list(col2['s'].keys()) == list(col2['t'].keys()) == [0, 'a']


def test_column_update_takes_mappings_pairs_and_keywords(writer) -> None:  # type: ignore[no-untyped-def]
    col = writer.add_ndarray_column('n', prototype=arr(0), contains_subsamples=True)
    col.update({'x': {'a': arr(1)}}, y=[('b', arr(2))])
    col.update([('z', {'c': arr(3)})])
    assert list(col.keys()) == ['x', 'y', 'z'] and same(col['y', 'b'], arr(2))
    col['x'] = {'a2': arr(4)}  # writing a sample adds to it, as in Hangar
    assert list(col['x'].keys()) == ['a', 'a2']


def test_bad_subsample_maps_stage_nothing(writer) -> None:  # type: ignore[no-untyped-def]
    col = writer.add_ndarray_column('n', prototype=arr(0), contains_subsamples=True)
    col['s'] = {'keep': arr(1)}
    with pytest.raises(ValueError, match='dictionary update sequence element #0 has length'):
        col['s'].update(['subsample1', arr(2)])
    with pytest.raises(ValueError, match='dictionary update sequence'):
        col.update({'t': ['subsample1', arr(2)]})
    with pytest.raises(TypeError, match='takes from 1 to 2 positional arguments'):
        col['s'].update('fail', arr(2))  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        col.update({'u': {'ok': arr(1)}, 'v': {'bad': np.zeros(3)}})  # wrong shape: none are staged
    assert list(col.keys()) == ['s'] and list(col['s'].keys()) == ['keep']


def test_the_sample_object(writer) -> None:  # type: ignore[no-untyped-def]
    col = writer.add_ndarray_column('scans', prototype=arr(0), contains_subsamples=True)
    col['p1'] = {0: arr(0), 1: arr(1), 2: arr(2), 'axial': arr(9)}
    sample = col['p1']
    assert sample.sample == 'p1' and sample.column == 'scans' and sample.iswriteable
    assert not sample.contains_remote_references and sample.remote_reference_keys == ()
    everything = sample[...]
    assert isinstance(everything, dict) and list(everything) == [0, 1, 2, 'axial']
    assert sample.data.keys() == everything.keys() and same(sample.data['axial'], arr(9))
    assert list(sample[:]) == [0, 1, 2, 'axial'] and list(sample[0:2]) == [0, 1]
    assert list(sample[1:99]) == [1, 2, 'axial']  # out-of-range slices stop at the end, as lists do
    with pytest.raises(TypeError):
        sample[[0, 1]]
    with pytest.raises(TypeError):
        sample[..., 0]
    with pytest.raises(KeyError):
        sample['nope']
    assert sample.get('nope') is None and 'nope' not in sample and 0 in sample
    new = sample.append(arr(5))
    assert isinstance(new, str) and same(col['p1', new], arr(5)) and len(sample) == 5
    assert same(sample.pop(1), arr(1)) and 1 not in sample
    with pytest.raises(TypeError, match='takes 2 positional arguments but 3 were given'):
        sample.pop(0, 2)  # type: ignore[call-arg]
    sample[7] = arr(7)
    del sample[0]
    assert list(sample.keys())[:2] == [2, 7]
    with sample as s:
        assert s is sample and col._is_conman
        s['in_block'] = arr(3)
    assert not col._is_conman and 'in_block' in sample


def test_samples_read_back_through_a_reader(repo: Repository) -> None:
    with closing(repo.checkout(write=True)) as co:
        col = co.add_str_column('notes', contains_subsamples=True)
        col['d'] = {'x': 'one', 'y': 'two'}
        co.commit('nested strs')
    with closing(repo.checkout()) as co:
        sample = co['notes']['d']
        assert sample.data == {'x': 'one', 'y': 'two'} and not sample.iswriteable
        assert co['notes', 'd', ...] == {'x': 'one', 'y': 'two'}
        with pytest.raises(PermissionError):
            sample['z'] = 'three'
        with pytest.raises(PermissionError):
            sample.append('three')
        assert co['notes'].num_subsamples == 2


def test_nested_pop_returns_the_samples_dict(writer) -> None:  # type: ignore[no-untyped-def]
    col = writer.add_ndarray_column('n', prototype=arr(0), contains_subsamples=True)
    col['s'] = {'a': arr(1)}
    popped = col.pop('s')
    assert list(popped) == ['a'] and same(popped['a'], arr(1)) and 's' not in col


def test_flat_append_generates_ordered_keys(writer) -> None:  # type: ignore[no-untyped-def]
    col = writer.add_ndarray_column('flat', prototype=arr(0))
    keys = [col.append(arr(i)) for i in range(20)]
    assert len(set(keys)) == 20 and all(isinstance(k, str) for k in keys)
    assert list(col.keys()) == keys  # appended samples list in the order they were added
    assert [int(v[0, 0]) for v in col.values()] == list(range(20))
    with pytest.raises(ValueError):
        col.append(np.zeros(3))  # the schema still applies
    assert len(col) == 20
    strs = writer.add_str_column('strs')
    key = strs.append('hello')
    assert strs[key] == 'hello'
