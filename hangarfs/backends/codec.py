"""Small binary helpers shared by the backends and the engine: varints, checksums, durable writes."""

from __future__ import annotations

import os
from collections.abc import Iterable

import xxhash


def encode_varint(n: int) -> bytes:
    """Unsigned LEB128."""
    if n < 0:
        raise ValueError(f'varint must be non-negative, got {n}')
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def decode_varint(data: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode one unsigned LEB128 at ``pos``; return (value, position after it)."""
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    result = 0
    shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ValueError('varint too long')


#: Bytes of a read checksum where a location stores one (little-endian).
CHECKSUM_SIZE = 8


def checksum(data: bytes | memoryview | bytearray) -> int:
    """The fast read checksum (xxh3, 64 bits)."""
    return xxhash.xxh3_64_intdigest(data)


def fsync_paths(paths: Iterable[str]) -> None:
    """fsync each file that still exists, then each distinct parent directory."""
    dirs: set[str] = set()
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dirs.add(os.path.dirname(path))
    for d in dirs:
        fsync_dir(d)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
