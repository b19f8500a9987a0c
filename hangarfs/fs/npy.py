"""``.npy`` headers: rendered exactly as ``numpy.save`` writes them, and parsed strictly.

A sample file is ``header_for(dtype, shape) + the array's C-order bytes``, byte-identical to what
``numpy.save`` writes for that array with the installed numpy (we let numpy's own header writer do the
formatting, so alignment and padding always match).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.lib.format as npf

from hangarfs.errors import HangarfsError

MAGIC = b'\x93NUMPY'
MAX_HEADER_PROBE = 1 << 16  # enough bytes to hold any header numpy writes for our dtypes


class NpyFormatError(HangarfsError, ValueError):
    """Bytes that are not a valid ``.npy`` file, or not one we can store."""


@lru_cache(maxsize=4096)
def header_for(dtype_str: str, shape: tuple[int, ...]) -> bytes:
    """The header numpy.save writes for a C-ordered array of this dtype and shape."""
    header = {'descr': npf.dtype_to_descr(np.dtype(dtype_str)), 'fortran_order': False, 'shape': tuple(shape)}
    buf = io.BytesIO()
    try:
        npf.write_array_header_1_0(buf, header)
    except ValueError:  # header longer than 65535 bytes: numpy.save switches to format 2.0
        buf = io.BytesIO()
        npf.write_array_header_2_0(buf, header)
    return buf.getvalue()


@dataclass(frozen=True)
class NpyHeader:
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool
    data_offset: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def native_dtype(self) -> np.dtype:
        """The dtype the array is stored as: the file's, in this machine's byte order."""
        return self.dtype if self.dtype.isnative else self.dtype.newbyteorder('=')

    def check_body(self, size: int) -> None:
        """Raise NpyFormatError unless ``size`` bytes after the header are exactly the array's."""
        if size != self.nbytes:
            what = 'truncated' if size < self.nbytes else 'longer than its header says'
            raise NpyFormatError(
                f'the .npy data is {what}: the header promises {self.nbytes} bytes for '
                f'{self.dtype} {self.shape}, the file holds {size}'
            )


# the header dict exactly as numpy.save writes it; anything else goes through numpy's own parser
_CANONICAL = re.compile(
    rb"\{'descr': '([<>|=][a-zA-Z][0-9]+)', 'fortran_order': (True|False), 'shape': \(([0-9, ]*)\), \} *\n"
)


@lru_cache(maxsize=256)
def _dtype(descr: bytes) -> np.dtype:
    return np.dtype(descr.decode('ascii'))


def _parse_canonical(prefix: bytes) -> NpyHeader | None:
    """The header of a file numpy.save wrote (version 1.0), without numpy's literal_eval; else None."""
    if len(prefix) < 10 or prefix[6:8] != b'\x01\x00':
        return None
    hlen = int.from_bytes(prefix[8:10], 'little')
    m = _CANONICAL.fullmatch(prefix, 10, 10 + hlen)
    if m is None:
        return None
    dims = m.group(3).replace(b' ', b'')
    shape = tuple(int(d) for d in dims.split(b',') if d)
    if dims and not dims.endswith(b',') and len(shape) == 1:
        return None  # '(3)' is not a tuple: let numpy say what is wrong
    try:
        dtype = _dtype(m.group(1))
    except TypeError:
        return None
    if dtype.hasobject or dtype.fields is not None:
        return None
    return NpyHeader(dtype, shape, m.group(2) == b'True', 10 + hlen)


def parse_header(prefix: bytes) -> NpyHeader:
    """Parse the header at the start of ``prefix`` (raises NpyFormatError saying what is wrong)."""
    fast = _parse_canonical(prefix)
    if fast is not None:
        return fast
    if not prefix.startswith(MAGIC):
        raise NpyFormatError('not a .npy file: it does not start with the \\x93NUMPY magic string')
    fh = io.BytesIO(prefix)
    try:
        version = npf.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npf.read_array_header_1_0(fh, max_header_size=MAX_HEADER_PROBE)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npf.read_array_header_2_0(fh, max_header_size=MAX_HEADER_PROBE)
        else:
            raise NpyFormatError(f'.npy format version {version} is not supported')
    except NpyFormatError:
        raise
    except (ValueError, EOFError, SyntaxError, TypeError) as err:
        raise NpyFormatError(f'the .npy header is truncated or malformed: {err}') from err
    if dtype.hasobject:
        raise NpyFormatError(
            'the array holds Python objects (dtype object); only plain numeric arrays are stored'
        )
    if dtype.fields is not None or dtype.subdtype is not None:
        raise NpyFormatError(f'structured dtype {dtype} is not supported; store each field as its own column')
    return NpyHeader(dtype, tuple(int(s) for s in shape), bool(fortran), fh.tell())


def parse_npy(data: bytes | bytearray | memoryview) -> tuple[NpyHeader, np.ndarray]:
    """Parse a whole ``.npy`` file held in memory into its header and a C-ordered array.

    The data must be exactly header + array bytes. A Fortran-ordered array is accepted and converted
    to C order (the sample is the same array; the mount then shows it C-ordered).
    """
    view = memoryview(data).cast('B')
    header = parse_header(bytes(view[:MAX_HEADER_PROBE]))
    if isinstance(data, bytes):  # immutable: the array may share its memory
        view = memoryview(data)
    body = view[header.data_offset :]
    header.check_body(len(body))
    arr = np.frombuffer(body, dtype=header.dtype)
    if header.fortran_order:
        arr = arr.reshape(header.shape[::-1]).T
        arr = np.ascontiguousarray(arr)
    else:
        arr = arr.reshape(header.shape)
    if arr.dtype != header.native_dtype:
        arr = arr.astype(header.native_dtype)
    return header, arr
