"""Locations, codes and options as values: exact bytes, round trips, and clear errors for bad input.

The location bytes are the on-disk format: the golden values here are written out by hand from the
format each backend module documents, so a change to them is a format change, not a refactoring.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hangarfs.backends import BACKEND_CLASSES, BackendCode, BackendSet, backend_code
from hangarfs.backends.codes import parse_backend_code
from hangarfs.backends.collection import FILE_ID_SIZE
from hangarfs.backends.hdf5 import (
    LARGE_SAMPLE_BYTES,
    Hdf5Backend,
    Hdf5Location,
    parse_hdf5_location,
    serialize_hdf5_location,
)
from hangarfs.backends.hdf5_options import Hdf5Options
from hangarfs.backends.lmdb_inline import (
    InlineLocation,
    LmdbBackend,
    inline_location,
    parse_inline_location,
    serialize_inline_location,
)
from hangarfs.backends.numpy_files import (
    NumpyBackend,
    NumpyLocation,
    parse_numpy_location,
    serialize_numpy_location,
)
from hangarfs.backends.remote import (
    RemoteLocation,
    RemotePlaceholder,
    parse_remote_location,
    remote_location,
    serialize_remote_location,
)
from hangarfs.errors import BackendError, CorruptData, DataNotLocal

FILE_ID = bytes.fromhex('0102030405060708')
file_ids = st.binary(min_size=FILE_ID_SIZE, max_size=FILE_ID_SIZE)
sizes = st.integers(min_value=0, max_value=2**40)
checksums = st.integers(min_value=0, max_value=2**64 - 1)

# ---------------------------------------------------------------------------------------- exact bytes


def test_hdf5_location_bytes() -> None:
    loc = Hdf5Location(FILE_ID, 300, 5)
    assert serialize_hdf5_location(loc) == b'00' + FILE_ID + b'\xac\x02' + b'\x05'
    assert parse_hdf5_location(b'00' + FILE_ID + b'\xac\x02\x05') == loc


def test_numpy_location_bytes() -> None:
    loc = NumpyLocation(FILE_ID, 0, 128, 0x1122334455667788)
    expected = b'10' + FILE_ID + b'\x00' + b'\x80\x01' + bytes.fromhex('8877665544332211')
    assert serialize_numpy_location(loc) == expected
    assert parse_numpy_location(expected) == loc


def test_inline_location_bytes() -> None:
    loc = inline_location(b'abc')
    assert loc[:2] == b'30' and loc[10:] == b'abc' and len(loc) == 13
    parsed = parse_inline_location(loc)
    assert parsed.data == b'abc' and serialize_inline_location(parsed) == loc


def test_remote_location_bytes() -> None:
    assert remote_location('origin', 200) == b'50\xc8\x01origin'
    assert parse_remote_location(b'50\xc8\x01origin') == RemoteLocation('origin', 200)


def test_a_batch_writes_the_same_locations_as_the_documented_format(tmp_path: Any) -> None:
    """What write_batch returns is the format parse_*/serialize_* describe, sample by sample."""
    blobs = [b'a' * 10, b'', b'b' * 200]
    (h1, h2, h3) = Hdf5Backend(tmp_path).write_batch(blobs, options={}, typesize=1).locations
    file_id = parse_hdf5_location(h1).file_id
    assert [h1, h2, h3] == [
        serialize_hdf5_location(Hdf5Location(file_id, offset, size))
        for offset, size in ((0, 10), (10, 0), (10, 200))
    ]
    numpy_locs = NumpyBackend(tmp_path).write_batch(blobs, options={}, typesize=1).locations
    assert [(n.offset, n.size) for n in map(parse_numpy_location, numpy_locs)] == [
        (0, 10),
        (10, 0),
        (10, 200),
    ]
    assert LmdbBackend(tmp_path).write_batch(blobs, options={}, typesize=1).locations == [
        inline_location(b) for b in blobs
    ]


def test_a_batch_of_empty_values_names_no_file(tmp_path: Any) -> None:
    (loc,) = Hdf5Backend(tmp_path).write_batch([b''], options={}, typesize=1).locations
    assert loc == b'00' + bytes(8) + b'\x00\x00'
    (loc,) = NumpyBackend(tmp_path).write_batch([b''], options={}, typesize=1).locations
    assert loc[:12] == b'10' + bytes(8) + b'\x00\x00' and len(loc) == 20
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------- round trips


@given(file_id=file_ids, offset=sizes, size=sizes)
def test_hdf5_locations_round_trip(file_id: bytes, offset: int, size: int) -> None:
    loc = Hdf5Location(file_id, offset, size)
    assert parse_hdf5_location(serialize_hdf5_location(loc)) == loc


@given(file_id=file_ids, offset=sizes, size=sizes, checksum=checksums)
def test_numpy_locations_round_trip(file_id: bytes, offset: int, size: int, checksum: int) -> None:
    loc = NumpyLocation(file_id, offset, size, checksum)
    assert parse_numpy_location(serialize_numpy_location(loc)) == loc


@given(checksum=checksums, data=st.binary(max_size=100))
def test_inline_locations_round_trip(checksum: int, data: bytes) -> None:
    loc = InlineLocation(checksum, data)
    assert parse_inline_location(serialize_inline_location(loc)) == loc


@given(remote=st.text(max_size=30), nbytes=sizes)
def test_remote_locations_round_trip(remote: str, nbytes: int) -> None:
    loc = RemoteLocation(remote, nbytes)
    assert parse_remote_location(serialize_remote_location(loc)) == loc


# ---------------------------------------------------------------------------------------- damaged locations


@pytest.mark.parametrize(
    ('backend_class', 'location'),
    [
        (Hdf5Backend, b'00' + FILE_ID),  # no offset, no size
        (Hdf5Backend, b'00' + FILE_ID + b'\x05'),  # no size
        (Hdf5Backend, b'00' + FILE_ID + b'\x05\x05\x05'),  # a byte too many
        (Hdf5Backend, b'00' + FILE_ID + b'\xff' * 12),  # a varint that never ends
        (NumpyBackend, b'10' + FILE_ID + b'\x00\x05' + b'\x01' * 7),  # checksum cut short
        (NumpyBackend, b'10' + FILE_ID + b'\x00\x05'),
        (LmdbBackend, b'30\x00\x01'),  # shorter than its checksum
        (RemotePlaceholder, b'50\x80'),  # varint cut short
        (RemotePlaceholder, b'50\x05\xff\xfe'),  # not UTF-8
    ],
)
def test_a_malformed_location_is_corrupt_data_not_a_crash(
    backend_class: Any, location: bytes, tmp_path: Any
) -> None:
    backend = backend_class(tmp_path)
    calls = {LmdbBackend: [backend.read], RemotePlaceholder: [backend.read, backend.nbytes]}.get(
        backend_class, [backend.read, backend.nbytes, backend.files_of]
    )  # the length of an inline value, and the files of one not stored here, need no parsing
    for call in calls:
        with pytest.raises(CorruptData, match='malformed'):
            call(location)


def test_unknown_codes_in_stored_locations_are_named(tmp_path: Any) -> None:
    backends = BackendSet(tmp_path)
    with pytest.raises(BackendError, match="unknown backend code b'77'"):
        backends.read(b'77' + bytes(10))
    with pytest.raises(BackendError, match="unknown backend code '77'"):
        backends.get('77')
    with pytest.raises(BackendError, match='unknown backend code'):
        parse_backend_code(b'')


def test_the_remote_placeholder_says_where_the_data_is(tmp_path: Any) -> None:
    backend = BackendSet(tmp_path)
    loc = remote_location('origin', 1234)
    assert backend.for_location(loc).nbytes(loc) == 1234
    with pytest.raises(DataNotLocal, match="remote 'origin'"):
        backend.read(loc)


# ---------------------------------------------------------------------------------------- codes


def test_codes_are_str_values_that_look_up_as_plain_strings() -> None:
    assert BackendCode.HDF5 == '00' and f'{BackendCode.NUMPY}' == '10' and str(BackendCode.LMDB) == '30'
    assert BACKEND_CLASSES['00'] is Hdf5Backend and BACKEND_CLASSES[BackendCode.NUMPY] is NumpyBackend
    assert backend_code('numpy') is BackendCode.NUMPY and backend_code('30') is BackendCode.LMDB
    assert [c.prefix for c in BackendCode] == [b'00', b'10', b'30', b'50']
    for code in BackendCode:
        assert parse_backend_code(code.prefix + b'rest') is code


def test_backend_instances_are_shared_by_code_and_by_location(tmp_path: Any) -> None:
    backends = BackendSet(tmp_path)
    hdf5 = backends.get('00')
    assert backends.get(BackendCode.HDF5) is hdf5
    assert backends.for_location(b'00' + FILE_ID + b'\x00\x00') is hdf5
    backends.close()
    assert backends.get('00') is not hdf5


# ---------------------------------------------------------------------------------------- options


def test_hdf5_options_are_a_frozen_value_with_the_schema_dict() -> None:
    opts = Hdf5Options.from_dict({'complib': 'blosc:lz4', 'shuffle': True})
    assert opts == Hdf5Options('blosc:lz4', 1, 'byte')
    assert opts.to_dict() == {'complib': 'blosc:lz4', 'complevel': 1, 'shuffle': 'byte'}
    assert Hdf5Options.from_dict(opts.to_dict()) == opts
    with pytest.raises(AttributeError):
        opts.complevel = 3  # type: ignore[misc]
    assert Hdf5Options.from_dict({'complib': None, 'complevel': 7}) == Hdf5Options('none', 0, 'byte')


@pytest.mark.parametrize(
    'fields',
    [{'complib': 'blosc:gzip'}, {'complevel': 12}, {'shuffle': True}, {'complib': 'none', 'complevel': 3}],
)
def test_hdf5_options_hold_only_canonical_values(fields: dict[str, Any]) -> None:
    with pytest.raises(BackendError, match=r'expected .*, got .*'):
        Hdf5Options(**fields)


def test_default_options_follow_the_sample_size() -> None:
    assert Hdf5Backend.default_options(100) == {'complib': 'blosc:zstd', 'complevel': 1, 'shuffle': 'byte'}
    assert Hdf5Backend.default_options(LARGE_SAMPLE_BYTES) == {
        'complib': 'blosc:lz4',
        'complevel': 5,
        'shuffle': 'bit',
    }
    assert NumpyBackend.default_options(10) == {} and LmdbBackend.default_options(10) == {}


@pytest.mark.parametrize('backend_class', [NumpyBackend, LmdbBackend])
def test_backends_without_options_refuse_any(backend_class: Any) -> None:
    assert backend_class.parse_options(None).to_dict() == {}
    with pytest.raises(BackendError, match=f'{backend_class.name} backend takes no options'):
        backend_class.parse_options({'complib': 'blosc:lz4'})


def test_the_remote_placeholder_takes_no_options() -> None:
    with pytest.raises(BackendError, match='not a backend columns can write to'):
        RemotePlaceholder.normalize_options(None)
