"""Sample values: validation against a column schema, content digests, and tree references.

A sample's digest is blake2b-256 over a kind tag, its dtype and shape (arrays) and its bytes, so the
same bytes with another dtype or shape are another sample. The *reference* stored in a column's tree is
the digest followed by what a reader needs to size the sample without reading it: the shape of a
variable-shape array, or the length of a str/bytes value (a fixed-shape array needs nothing more).

A *heterogeneous* ndarray column (schema dtype and shape both None) lets every sample have its own
dtype and shape (any number of dimensions, no maximum), as the parameters of one model do. Its refs
carry the dtype too: digest, varint length + dtype string (``<f4``), varint ndim, varint dims. The
digest already covers dtype and shape, so identical bytes of another dtype are another sample.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from hangarfs.backends.codec import decode_varint, encode_varint
from hangarfs.engine.records import DIGEST_SIZE, ColumnSchema
from hangarfs.errors import SchemaMismatch

ALLOWED_DTYPES = tuple(
    np.dtype(t)
    for t in (
        'bool',
        'int8',
        'int16',
        'int32',
        'int64',
        'uint8',
        'uint16',
        'uint32',
        'uint64',
        'float16',
        'float32',
        'float64',
    )
)
ALLOWED_DTYPE_NAMES = ', '.join(d.name for d in ALLOWED_DTYPES)


def normalize_dtype(dtype: Any) -> np.dtype:
    """A supported numpy dtype in native byte order, or ValueError naming the supported ones."""
    try:
        dt = np.dtype(dtype)
    except TypeError as err:
        raise ValueError(f'expected a numpy dtype, got {dtype!r} instead') from err
    native = dt.newbyteorder('=') if dt.byteorder not in ('=', '|') else dt
    for allowed in ALLOWED_DTYPES:
        if native == allowed:
            return allowed
    raise ValueError(f'dtype {dt} is not supported; expected one of {ALLOWED_DTYPE_NAMES}')


INLINE_VALUE_BYTES = 24  # fixed-shape arrays up to this size keep their bytes in the tree (a digest is 32)


@dataclass(frozen=True)
class SampleInfo:
    """What is known of a stored sample without reading it: enough to size and locate its bytes."""

    digest: bytes
    ref: bytes
    kind: str  # 'ndarray', 'str' or 'bytes'
    dtype: str | None  # numpy dtype string for arrays
    shape: tuple[int, ...] | None  # for arrays
    nbytes: int  # length of the stored bytes (C-order array data, UTF-8 text, raw bytes)
    inline: bytes | None = None  # the bytes themselves, for columns with inline values


class Prepared(NamedTuple):
    """A validated sample: its digest, its tree reference, and its bytes (a tuple: made per sample).

    A sample of a column with inline values has no digest and no bytes to store: its ref holds them.
    """

    digest: bytes
    ref: bytes
    data: bytes | memoryview


def _shape_ref(shape: tuple[int, ...]) -> bytes:
    return encode_varint(len(shape)) + b''.join(encode_varint(s) for s in shape)


def _shape_text(shape: tuple[int, ...]) -> bytes:
    return ','.join(str(s) for s in shape).encode()


class SampleCodec:
    """Validates values for one column, digests them, and turns stored bytes back into values."""

    def __init__(self, column: str, schema: ColumnSchema) -> None:
        self.column = column
        self.schema = schema
        self.kind = schema.kind
        self.heterogeneous = schema.kind == 'ndarray' and schema.dtype is None
        if self.heterogeneous:
            self.dtype = np.dtype('u1')  # not used: every sample's ref names its dtype
            self.shape: tuple[int, ...] = ()
            self.variable = True
            self._fixed_prefix = None
            self.inline = False
        elif self.kind == 'ndarray':
            assert schema.dtype is not None and schema.shape is not None
            self.dtype = np.dtype(schema.dtype)
            self.shape = tuple(schema.shape)
            self.variable = schema.variable_shape
            self._fixed_prefix = None
            self.inline = bool(schema.inline_values)
            if not self.variable:
                self._fixed_prefix = self._prefix(self.shape)
                self.fixed_nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        else:
            self.inline = False
            self._kind_prefix = hashlib.blake2b(
                b'hangarfs:' + self.kind.encode() + b'\x00', digest_size=DIGEST_SIZE
            )

    def _prefix(self, shape: tuple[int, ...], dtype: np.dtype | None = None) -> Any:
        dt = self.dtype if dtype is None else dtype
        return hashlib.blake2b(
            b'hangarfs:ndarray\x00' + dt.str.encode() + b'\x00' + _shape_text(shape) + b'\x00',
            digest_size=DIGEST_SIZE,
        )

    # validation and digests

    def prepare(self, value: Any, *, copy: bool = True) -> Prepared:
        """Validate and digest a value. ``copy=False``: use an array's memory as it is (the caller
        promises not to change it until the value is staged)."""
        if self.kind == 'ndarray':
            return self._prepare_array(value, copy)
        if self.kind == 'str':
            if not isinstance(value, str):
                raise SchemaMismatch(self.column, 'a value of type', 'str', type(value).__name__)
            try:
                data = value.encode('utf-8')
            except UnicodeEncodeError as err:
                raise SchemaMismatch(
                    self.column, 'a str encodable as', 'UTF-8', f'{value[:20]!r}... ({err.reason})'
                ) from err
        else:
            if isinstance(value, (bytearray, memoryview)):
                value = bytes(value)
            if not isinstance(value, bytes):
                raise SchemaMismatch(self.column, 'a value of type', 'bytes', type(value).__name__)
            data = value
        h = self._kind_prefix.copy()
        h.update(data)
        digest = h.digest()
        return Prepared(digest, digest + encode_varint(len(data)), data)

    def check_array(self, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        """Raise SchemaMismatch unless an array of this dtype and shape fits the column."""
        if self.heterogeneous:
            if dtype not in ALLOWED_DTYPES or not dtype.isnative:
                raise SchemaMismatch(
                    self.column,
                    'a dtype among',
                    ALLOWED_DTYPE_NAMES,
                    dtype.name if dtype.isnative else dtype.str,
                    'convert it with arr.astype(...) (native byte order), or store its bits as uint',
                )
            return
        if dtype != self.dtype:
            raise SchemaMismatch(
                self.column,
                'dtype',
                self.dtype.name,
                dtype.name if dtype.isnative else dtype.str,
                f'convert it with arr.astype({self.dtype.name!r})',
            )
        if self.variable:
            if len(shape) != len(self.shape) or any(s > m for s, m in zip(shape, self.shape)):
                raise SchemaMismatch(
                    self.column,
                    f'a shape of {len(self.shape)} dimensions each at most',
                    self.shape,
                    shape,
                    'the column has variable shape with that maximum',
                )
        elif shape != self.shape:
            raise SchemaMismatch(self.column, 'shape', self.shape, shape)

    def _prepare_array(self, value: Any, copy: bool = True) -> Prepared:
        if not isinstance(value, np.ndarray):
            raise SchemaMismatch(
                self.column,
                'a value of type',
                'numpy.ndarray',
                type(value).__name__,
                'wrap it with numpy.asarray(...)',
            )
        self.check_array(value.dtype, value.shape)
        shape = value.shape
        if self.heterogeneous:
            prefix = self._prefix(shape, value.dtype)
        else:
            prefix = self._prefix(shape) if self.variable else self._fixed_prefix
        assert prefix is not None  # a fixed-shape codec always has its prefix
        if self.inline:
            return Prepared(b'', value.tobytes(), b'')
        data: bytes | memoryview
        if not copy and value.flags.c_contiguous and value.size:
            data = memoryview(value).cast('B')  # type: ignore[arg-type]
        else:
            data = value.tobytes()  # C order, and a copy: the caller may change the array later
        h = prefix.copy()
        h.update(data)
        digest = h.digest()
        if self.heterogeneous:
            dstr = value.dtype.str.encode()
            ref = digest + encode_varint(len(dstr)) + dstr + _shape_ref(shape)
        elif self.variable:
            ref = digest + _shape_ref(shape)
        else:
            ref = digest
        return Prepared(digest, ref, data)

    def prepare_stack(self, values: np.ndarray) -> list[Prepared]:
        """Validate a stacked batch of fixed-shape arrays once and digest every row."""
        if values.dtype != self.dtype:
            raise SchemaMismatch(
                self.column,
                'dtype',
                self.dtype.name,
                values.dtype.name,
                f'convert it with arr.astype({self.dtype.name!r})',
            )
        if values.shape[1:] != self.shape:
            raise SchemaMismatch(
                self.column, 'rows of shape', self.shape, values.shape[1:], 'stack samples along axis 0'
            )
        if self.inline:
            raw = np.ascontiguousarray(values).tobytes()
            n = self.fixed_nbytes
            return [Prepared(b'', raw[i * n : (i + 1) * n], b'') for i in range(values.shape[0])]
        buf = memoryview(np.ascontiguousarray(values).tobytes())
        size = self.fixed_nbytes
        prefix = self._fixed_prefix
        assert prefix is not None
        out = []
        for i in range(values.shape[0]):
            row = buf[i * size : (i + 1) * size]
            h = prefix.copy()
            h.update(row)
            d = h.digest()
            out.append(Prepared(d, d, row))
        return out

    def digest_of_data(self, data: bytes | memoryview, ref: bytes) -> bytes:
        """Recompute the digest of stored bytes (verification)."""
        h = self.digest_hasher(ref)
        h.update(data)
        digest: bytes = h.digest()
        return digest

    def digest_hasher(self, ref: bytes) -> Any:
        """A blake2b hasher primed for the sample ``ref`` names: ``update`` it with the stored bytes,
        piece by piece, and its ``digest()`` is the sample digest (for samples too big for memory)."""
        if self.kind == 'ndarray':
            if self._fixed_prefix is not None:
                return self._fixed_prefix.copy()
            return self._prefix(self.shape_of(ref), self.dtype_of(ref)).copy()
        return self._kind_prefix.copy()

    # references

    def dtype_of(self, ref: bytes) -> np.dtype:
        """The sample's dtype (the column's, or the one its ref names in a heterogeneous column)."""
        if not self.heterogeneous:
            return self.dtype
        n, pos = decode_varint(ref, DIGEST_SIZE)
        return np.dtype(ref[pos : pos + n].decode('ascii'))

    def shape_of(self, ref: bytes) -> tuple[int, ...]:
        if not self.variable:
            return self.shape
        pos = DIGEST_SIZE
        if self.heterogeneous:
            n, pos = decode_varint(ref, pos)
            pos += n
        ndim, pos = decode_varint(ref, pos)
        dims = []
        for _ in range(ndim):
            d, pos = decode_varint(ref, pos)
            dims.append(d)
        return tuple(dims)

    def nbytes_of(self, ref: bytes) -> int:
        """Size of the sample's bytes (array data, or encoded str/bytes) from its reference."""
        if self.kind == 'ndarray':
            if not self.variable:
                return self.fixed_nbytes
            return int(np.prod(self.shape_of(ref), dtype=np.int64)) * self.dtype_of(ref).itemsize
        return decode_varint(ref, DIGEST_SIZE)[0]

    def info(self, ref: bytes) -> SampleInfo:
        shape = self.shape_of(ref) if self.kind == 'ndarray' else None
        if self.inline:
            return SampleInfo(
                self.digest_of_ref(ref), ref, self.kind, self.schema.dtype, shape, len(ref), ref
            )
        dtype = self.dtype_of(ref).str if self.heterogeneous else self.schema.dtype
        return SampleInfo(ref[:DIGEST_SIZE], ref, self.kind, dtype, shape, self.nbytes_of(ref))

    def digest_of_ref(self, ref: bytes) -> bytes:
        """The content digest a ref stands for (computed from the bytes of an inline value)."""
        if not self.inline:
            return ref[:DIGEST_SIZE]
        assert self._fixed_prefix is not None
        h = self._fixed_prefix.copy()
        h.update(ref)
        digest: bytes = h.digest()
        return digest

    # decoding

    def decode(self, data: bytes | bytearray, ref: bytes) -> Any:
        if self.kind == 'ndarray':
            arr = np.frombuffer(data, dtype=self.dtype_of(ref))
            if not isinstance(data, bytearray):
                arr = arr.copy()  # callers get arrays they may modify
            return arr.reshape(self.shape_of(ref))
        if self.kind == 'str':
            return bytes(data).decode('utf-8')
        return bytes(data)

    @property
    def typesize(self) -> int:
        return self.dtype.itemsize if self.kind == 'ndarray' and not self.heterogeneous else 1
