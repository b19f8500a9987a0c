"""Importing sample files into a column and exporting a column as files (``.npy``/``.txt``/``.bin``).

File names map to keys as in ``names.py``, the same mapping the mounts use, so an exported directory
can be imported back, and ``cp -r`` from a mount gives the same files as ``export``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hangarfs.engine.columns import Column
from hangarfs.engine.nested import NestedColumn
from hangarfs.errors import HangarfsError
from hangarfs.fs.names import EXTENSIONS, key_to_name, name_to_key, parse_sample_file_name, sample_file_name
from hangarfs.fs.npy import MAX_HEADER_PROBE, header_for, parse_header, parse_npy

Progress = Callable[[int], None]


@dataclass(frozen=True)
class TransferResult:
    samples: int
    bytes: int


def collect_files(paths: Iterable[str | os.PathLike[str]], kind: str) -> list[Path]:
    """The sample files named by ``paths``: files as given, directories' matching files (sorted)."""
    ext = EXTENSIONS[kind]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(ext)))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f'{p}: no such file or directory')
    return out


def read_sample_file(path: Path, kind: str) -> Any:
    data = path.read_bytes()
    with _about(path):
        if kind == 'ndarray':
            return parse_npy(data)[1]
        if kind == 'str':
            try:
                return data.decode('utf-8')
            except UnicodeDecodeError as err:
                raise ValueError(f'not UTF-8 text ({err.reason} at byte {err.start})') from err
    return data


def import_files(
    column: Column, files: list[Path], progress: Progress | None = None, batch: int = 2048
) -> TransferResult:
    """Stage one sample per file into a flat column (keys from the file names); all or nothing per call.

    Every file is checked first (its name; for arrays the header, the size and the column's dtype and
    shape; for text, UTF-8), so a bad file stages nothing; the errors name the file.
    """
    kind = column.column_type
    keyed = []
    for f in files:
        with _about(f):
            keyed.append((parse_sample_file_name(f.name, kind), f))
    for _, f in keyed:
        with _about(f):
            _check_sample_file(column, f, kind)
    total = 0
    with column:
        for start in range(0, len(keyed), batch):
            chunk = [(k, f, read_sample_file(f, kind)) for k, f in keyed[start : start + batch]]
            for key, f, value in chunk:
                with _about(f):
                    column[key] = value
                total += value.nbytes if hasattr(value, 'nbytes') else len(value)
            if progress is not None:
                progress(len(chunk))
    return TransferResult(len(keyed), total)


def _check_sample_file(column: Column, path: Path, kind: str) -> None:
    """Check a sample file against the column without staging it (arrays: header and size only)."""
    if kind == 'ndarray':
        with open(path, 'rb') as fh:
            header = parse_header(fh.read(MAX_HEADER_PROBE))
        header.check_body(path.stat().st_size - header.data_offset)
        column.check_array(header.native_dtype, header.shape)
    elif kind == 'str':
        read_sample_file(path, kind)  # UTF-8 or not: text samples are small


@contextmanager
def _about(path: Path) -> Iterator[None]:
    """Errors raised inside name the file they are about (keeping their type)."""
    try:
        yield
    except (HangarfsError, ValueError) as err:
        if err.args and isinstance(err.args[0], str) and not err.args[0].startswith(f'{path}: '):
            err.args = (f'{path}: {err.args[0]}', *err.args[1:])
        raise


def _file_bytes(value: Any, kind: str) -> Iterator[bytes | memoryview]:
    if kind == 'ndarray':
        yield header_for(value.dtype.str, value.shape)
        yield memoryview(value).cast('B') if value.size else b''
    elif kind == 'str':
        yield value.encode('utf-8')
    else:
        yield value


def _write_file(path: Path, parts: Iterable[bytes | memoryview]) -> int:
    n = 0
    with open(path, 'wb') as fh:
        for part in parts:
            n += fh.write(part)
    return n


def export_column(
    column: Column | NestedColumn, out_dir: Path, progress: Progress | None = None
) -> TransferResult:
    """Write every sample of a column to ``out_dir`` (nested: one directory per sample)."""
    kind = column.column_type
    out_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    nbytes = 0
    if isinstance(column, NestedColumn):
        for key, sample in column.items():
            d = out_dir / key_to_name(key)
            d.mkdir(exist_ok=True)
            for sub, value in sample.items():
                nbytes += _write_file(d / sample_file_name(sub, kind), _file_bytes(value, kind))
                count += 1
            if progress is not None:
                progress(1)
    else:
        for key, value in column.items():
            nbytes += _write_file(out_dir / sample_file_name(key, kind), _file_bytes(value, kind))
            count += 1
            if progress is not None:
                progress(1)
    return TransferResult(count, nbytes)


__all__ = ['collect_files', 'export_column', 'import_files', 'name_to_key', 'read_sample_file']
