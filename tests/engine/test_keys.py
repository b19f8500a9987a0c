"""Sample keys: the byte encoding the trees sort by must order keys as the API promises."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hangarfs.engine.keys import (
    decode_key_pair,
    decode_keys,
    decode_one_key,
    encode_key,
    encode_valid_key,
    key_sort_order,
    normalize_key,
)

KEY_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-'
int_keys = st.one_of(st.integers(0, 70_000), st.integers(0, 2**64 - 1))
str_keys = st.text(KEY_CHARS, min_size=1, max_size=255).filter(lambda s: s[0] != '.')
keys = st.one_of(int_keys, str_keys)


@settings(max_examples=300)
@given(keys)
def test_keys_round_trip(key: Any) -> None:
    assert decode_one_key(encode_key(key)) == key
    assert encode_valid_key(key) == encode_key(key)
    assert normalize_key(key) == key


@settings(max_examples=300)
@given(keys, keys)
def test_encoded_keys_sort_as_keys_do(a: Any, b: Any) -> None:
    """Ints first, numerically; then strs in byte order. 5 and '5' differ."""
    assert (encode_key(a) < encode_key(b)) == (key_sort_order(a) < key_sort_order(b))
    assert (encode_key(a) == encode_key(b)) == (type(a) is type(b) and a == b)


@settings(max_examples=200)
@given(keys, keys)
def test_a_nested_key_pair_decodes_unambiguously(key: Any, subkey: Any) -> None:
    assert decode_key_pair(encode_key(key) + encode_key(subkey)) == (key, subkey)


@settings(max_examples=100)
@given(st.lists(keys, max_size=40))
def test_decoding_a_list_of_keys_equals_decoding_each(ks: list[Any]) -> None:
    assert decode_keys([encode_key(k) for k in ks]) == ks


def test_decoding_a_list_rejects_a_damaged_int_key() -> None:
    with pytest.raises(ValueError, match='trailing bytes'):
        decode_keys([encode_key(5) + b'\x00'])


def test_int_and_str_lookalikes_are_different_keys() -> None:
    assert encode_key(5) != encode_key('5')
    assert sorted([encode_key(k) for k in ('5', 5, 'a', 0, 256)]) == [
        encode_key(k) for k in (0, 5, 256, '5', 'a')
    ]
