"""The pack format: round trips, coalesced reads, recovery without the footer, and damage.

A pack returns every blob it was given, byte for byte, whatever is asked of it; a damaged or cut
pack raises RemoteCorrupt naming the pack (and the blob), and nothing is returned from that read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hangarfs.backends.objstore import open_object_store
from hangarfs.backends.pack_reads import plan_reads, read_pack_blobs, scan_pack, verify_pack
from hangarfs.backends.packs import (
    ENTRY_DTYPE,
    PACK_MAGIC,
    RECORD,
    build_packs,
    entries_of,
    pack_name,
    parse_footer,
    read_pack_footer,
)
from hangarfs.errors_remote import RemoteCorrupt
from tests.helpers import flip_byte
from tests.remotes.conftest import blob_set


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(min_size=0, max_size=3000), min_size=1, max_size=40),
    st.integers(min_value=200, max_value=20_000),
)
def test_packs_round_trip_any_blobs_any_target(blobs: list[bytes], target: int) -> None:
    pairs = [(digest(b + bytes([i % 256])), b) for i, b in enumerate(blobs)]
    packs = list(build_packs('col', pairs, target))
    assert sum(len(p.table) for p in packs) == len(pairs)
    got = []
    for p in packs:
        assert p.name == pack_name(p.data)
        assert len(p.table) == 1 or p.size <= target  # only a single big blob exceeds the target
        group, table = verify_pack(p.data, p.name, 'mem')
        assert group == 'col' and table.tobytes() == p.table.tobytes()
        parsed = parse_footer(p.data, p.size, 'mem')
        assert not isinstance(parsed, int) and parsed.table.tobytes() == p.table.tobytes()
        assert parsed.group == 'col' and parsed.footer_offset < p.size
        for e in entries_of(p.table):
            start = e.offset + RECORD.size
            got.append((e.digest, p.data[start : start + e.length]))
    assert got == pairs


def test_footer_and_ranged_reads_through_a_store(tmp_path: Path) -> None:
    store = open_object_store(str(tmp_path / 's'), create=True)
    pairs = blob_set(300, size=500)
    (pack,) = build_packs('images', pairs, 1 << 20)
    key = f'data/images/{pack.name}'
    store.put_create(key, pack.data)
    footer = read_pack_footer(store, key, pack.size)
    group, table = footer.group, footer.table
    assert group == 'images' and table.tobytes() == pack.table.tobytes()

    store.stats.reset()
    everything = read_pack_blobs(store, key, table)
    assert everything.pack == key and len(everything) == 300
    assert [(d, bytes(b)) for d, b in everything] == pairs
    assert everything.nbytes == sum(len(b) for _, b in pairs)
    assert store.stats.snapshot()['requests'] == {'get_range': 1}  # one request for the whole pack

    store.stats.reset()
    some = table[[250, 3, 100]]
    got = read_pack_blobs(store, key, some, max_gap=0)
    assert {d: bytes(b) for d, b in got} == {pairs[i][0]: pairs[i][1] for i in (3, 100, 250)}
    assert store.stats.snapshot()['requests'] == {'get_range': 3}  # far apart: one request each


def test_plan_reads_coalesces_near_entries_only() -> None:
    pairs = blob_set(10, size=100)
    (pack,) = build_packs('g', pairs, 1 << 20)
    t = pack.table
    assert len(plan_reads(t, max_gap=0)) == 1  # contiguous records
    plan = plan_reads(t[[0, 1, 8, 9]], max_gap=100)
    assert [len(rows) for _, _, rows in plan] == [2, 2]
    plan = plan_reads(t[[0, 1, 8, 9]], max_gap=10_000)
    assert [len(rows) for _, _, rows in plan] == [4]
    assert len(plan_reads(t, max_gap=10_000, max_request=300)) == 10  # never a request over the cap


def test_scan_recovers_the_entries_without_the_footer() -> None:
    pairs = blob_set(50, size=300)
    (pack,) = build_packs('images', pairs, 1 << 20)
    footer_at = int(pack.table['offset'][-1] + RECORD.size + pack.table['length'][-1])
    group, table = scan_pack(pack.data[:footer_at], 'mem')  # footer and trailer lost
    assert group == 'images' and table.tobytes() == pack.table.tobytes()


def test_a_flipped_byte_is_rejected_naming_the_pack_and_blob(tmp_path: Path) -> None:
    store = open_object_store(str(tmp_path / 's'), create=True)
    pairs = blob_set(40, size=1000)
    (pack,) = build_packs('images', pairs, 1 << 20)
    key = f'data/images/{pack.name}'
    store.put_create(key, pack.data)
    victim = 17
    offset = int(pack.table['offset'][victim]) + RECORD.size + 5
    flip_byte(tmp_path / 's' / 'data' / 'images' / pack.name, offset)

    with pytest.raises(RemoteCorrupt) as err:
        read_pack_blobs(store, key, pack.table)
    assert key in str(err.value) and pairs[victim][0].hex() in str(err.value)
    assert 'checksum mismatch' in str(err.value)
    assert err.value.digest == pairs[victim][0]
    # the blobs before and after it are intact and still readable one by one
    ok = read_pack_blobs(store, key, pack.table[[0, 39]], max_gap=0)
    assert [bytes(b) for b in ok.blobs()] == [pairs[0][1], pairs[39][1]]
    with pytest.raises(RemoteCorrupt, match='hashes to'):
        verify_pack(store.get(key), pack.name, store.object_url(key))


def test_a_damaged_record_header_or_footer_is_rejected(tmp_path: Path) -> None:
    pairs = blob_set(5, size=100)
    (pack,) = build_packs('images', pairs, 1 << 20)
    data = bytearray(pack.data)
    data[int(pack.table['offset'][2]) + 10] ^= 0xFF  # inside the digest of record 2's header
    store = open_object_store(str(tmp_path / 's'), create=True)
    store.put('p', bytes(data))
    with pytest.raises(RemoteCorrupt, match='does not match its index entry'):
        read_pack_blobs(store, 'p', pack.table)
    data = bytearray(pack.data)
    data[-40] ^= 0xFF  # inside the footer
    with pytest.raises(RemoteCorrupt, match='footer'):
        parse_footer(bytes(data), len(data), 'p')


def test_a_truncated_pack_is_rejected(tmp_path: Path) -> None:
    store = open_object_store(str(tmp_path / 's'), create=True)
    pairs = blob_set(30, size=1000)
    (pack,) = build_packs('images', pairs, 1 << 20)
    store.put('data/images/p', pack.data[: len(pack.data) // 2])
    with pytest.raises(RemoteCorrupt, match='truncated'):
        read_pack_blobs(store, 'data/images/p', pack.table)
    with pytest.raises(RemoteCorrupt, match='truncated'):
        read_pack_footer(store, 'data/images/p', pack.size)  # the size the index promised
    with pytest.raises(RemoteCorrupt, match='trailer'):
        read_pack_footer(store, 'data/images/p', pack.size // 2)  # the size the store reports


def test_not_a_pack() -> None:
    with pytest.raises(RemoteCorrupt, match='not a hangarfs pack'):
        scan_pack(b'PK\x03\x04' + bytes(100), 'zip')
    with pytest.raises(RemoteCorrupt, match='not a hangarfs pack'):
        parse_footer(bytes(200), 200, 'zeros')
    assert PACK_MAGIC.startswith(b'HFPACK')


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match='32-byte digest'):
        list(build_packs('g', [(b'short', b'x')]))
    with pytest.raises(ValueError, match='group name'):
        list(build_packs('', [(bytes(32), b'x')]))
    assert plan_reads(np.zeros(0, ENTRY_DTYPE)) == []


def test_large_blobs_come_back_as_views_and_are_checked(tmp_path: Path) -> None:
    store = open_object_store(str(tmp_path / 's'), create=True)
    pairs = blob_set(4, size=300_000)
    (pack,) = build_packs('volumes', pairs, 4 << 20)
    store.put_create('p', pack.data)
    got = read_pack_blobs(store, 'p', pack.table)
    assert all(isinstance(b, memoryview) and b.readonly for b in got.blobs())  # no copies
    assert [bytes(b) for b in got.blobs()] == [b for _, b in pairs]
    assert got[1][0] == pairs[1][0] and [d for d, _ in got[2:]] == [pairs[2][0], pairs[3][0]]
    flip_byte(tmp_path / 's' / 'p', int(pack.table['offset'][3]) + RECORD.size + 299_999)
    with pytest.raises(RemoteCorrupt, match='checksum mismatch') as err:
        read_pack_blobs(store, 'p', pack.table)
    assert err.value.digest == pairs[3][0]


def test_most_of_a_pack_is_read_whole_and_checked_by_blocks(tmp_path: Path) -> None:
    store = open_object_store(str(tmp_path / 's'), create=True)
    pairs = blob_set(400, size=1000)
    (pack,) = build_packs('images', pairs, 1 << 20)
    store.put_create('p', pack.data)
    store.stats.reset()
    got = read_pack_blobs(store, 'p', pack.table[::-1], size=pack.size)  # any order in, offset order out
    assert [(d, bytes(b)) for d, b in got] == pairs
    assert store.stats.snapshot()['requests'] == {'get_range': 1}
    few = read_pack_blobs(store, 'p', pack.table[:3], size=pack.size)  # a few: ranged, checked per blob
    assert [bytes(b) for b in few.blobs()] == [b for _, b in pairs[:3]]
    wrong = pack.table.copy()
    wrong['offset'][7] += 1  # an index entry that names no record of this pack
    with pytest.raises(RemoteCorrupt, match='does not hold') as err:
        read_pack_blobs(store, 'p', wrong, size=pack.size)
    assert err.value.digest == pairs[7][0]

    victim = 250
    flip_byte(tmp_path / 's' / 'p', int(pack.table['offset'][victim]) + RECORD.size + 10)
    with pytest.raises(RemoteCorrupt, match='checksum mismatch') as err:
        read_pack_blobs(store, 'p', pack.table, size=pack.size)
    assert err.value.digest == pairs[victim][0]  # named, though found by its block
    # damage outside the blobs asked for, but inside the pack read whole: still nothing returned
    with pytest.raises(RemoteCorrupt, match='block checksum'):
        read_pack_blobs(store, 'p', pack.table[:240], size=pack.size)
    # read by ranges, the undamaged blobs are still there
    assert len(read_pack_blobs(store, 'p', pack.table[:5], size=pack.size)) == 5
