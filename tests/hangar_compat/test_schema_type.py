"""Item 2 of issue 15: str and bytes columns are variable-shape columns, as Hangar 0.5 documents:
"For str columns, there is no distinction between 'variable_shape' and 'fixed_shape' schema types.
Values are allowed to take on a value of any size"; Hangar reports them as ``'variable_shape'``."""

from __future__ import annotations

import numpy as np
import pytest

from hangarfs import Repository


@pytest.mark.parametrize('nested', [False, True])
def test_str_and_bytes_columns_are_variable_shape(repo: Repository, nested: bool) -> None:
    co = repo.checkout(write=True)
    strs = co.add_str_column('strs', contains_subsamples=nested)
    blobs = co.add_bytes_column('blobs', contains_subsamples=nested)
    fixed = co.add_ndarray_column('fixed', prototype=np.zeros(3), contains_subsamples=nested)
    var = co.add_ndarray_column('var', prototype=np.zeros(3), variable_shape=True, contains_subsamples=nested)
    for col in (strs, blobs, var):
        assert col.schema_type == 'variable_shape' and col.variable_shape is True
    assert fixed.schema_type == 'fixed_shape' and fixed.variable_shape is False
    assert strs.dtype is str and blobs.dtype is bytes
    if nested:
        strs['a'] = {'x': '', 'y': 'a much longer value' * 100}
        blobs['a'] = {'x': b'', 'y': b'\x00' * 10_000}
    else:
        strs.update({'x': '', 'y': 'a much longer value' * 100})
        blobs.update({'x': b'', 'y': b'\x00' * 10_000})
    co.commit('values of any length')
    co.close()
    co = repo.checkout()
    for name in ('strs', 'blobs', 'var'):
        assert co[name].schema_type == 'variable_shape' and co[name].variable_shape is True
    assert co['fixed'].schema_type == 'fixed_shape'
    co.close()
