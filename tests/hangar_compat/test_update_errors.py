"""Item 3 of issue 15: ``column.update`` takes what ``dict.update`` takes (Hangar 0.5: "accepting
either a dictionary or other iterable (of length two) listing key / value pairs"), and a malformed
argument gets dict.update's error, saying which element and what length, and naming the column."""

from __future__ import annotations

import numpy as np
import pytest

from hangarfs import Repository


@pytest.fixture
def col(repo: Repository):  # type: ignore[no-untyped-def]
    co = repo.checkout(write=True)
    yield co.add_ndarray_column('images', prototype=np.zeros((2, 2), np.float32))
    co.close()


def test_a_bare_pair_is_dicts_error(col) -> None:  # type: ignore[no-untyped-def]
    arr = np.ones((2, 2), np.float32)
    with pytest.raises(
        ValueError, match=r"column 'images': dictionary update sequence element #0 has length 3; 2"
    ):
        col.update(['foo', arr])
    assert 'foo' not in col and len(col) == 0
    col.update((['foo', arr],))  # the same pair inside an iterable is fine
    assert np.array_equal(col['foo'], arr)


def test_the_failing_element_is_named_and_nothing_is_staged(col) -> None:  # type: ignore[no-untyped-def]
    arr = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match='element #2 has length 1'):
        col.update([('a', arr), ('b', arr), ('c',)])
    with pytest.raises(TypeError, match=r'cannot convert dictionary update sequence element #1 \(int\)'):
        col.update([('a', arr), 5])
    with pytest.raises(TypeError, match='takes a mapping or an iterable'):
        col.update(5)
    assert len(col) == 0


def test_mapping_pairs_and_keywords(col) -> None:  # type: ignore[no-untyped-def]
    arr = np.arange(4, dtype=np.float32).reshape(2, 2)
    col.update({0: arr}, kw=arr + 1)
    col.update([(1, arr + 2), ('two', arr + 3)])
    col.update((k, arr + 10) for k in (5, 6))
    col.update()
    assert sorted(col.keys(), key=str) == [0, 1, 5, 6, 'kw', 'two']
    assert np.array_equal(col['kw'], arr + 1) and np.array_equal(col[6], arr + 10)
