"""The TensorFlow dataset: a ``tf.data.Dataset`` of samples with an output signature.

Importing this module imports tensorflow; ``hangarfs.make_tf_dataset`` imports it on first use.

The samples come from ``tf.data.Dataset.from_generator`` over *batches* (``read_size`` samples, one
bulk read per column), unbatched in TensorFlow's own code: the Python generator runs once per
``read_size`` samples instead of once per sample. Each pass over the dataset (each Keras epoch) calls
the generator again, which takes the next epoch's order.

``batch_size`` yields batches straight from the bulk reads instead (no unbatching and batching again
in TensorFlow, which costs several microseconds a sample). A dataset with a variable-shape column
yields samples one at a time (their shapes differ, so they cannot be stacked into one read), and
with ``batch_size`` pads each batch to its longest sample (``padded_batch``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from hangarfs.loaders.order import BlockShuffle, epoch_order
from hangarfs.loaders.source import DatasetSource, FieldSpec, SourceReader, batch_tuple_type


def _dtype(spec: FieldSpec) -> Any:
    return tf.as_dtype(np.dtype(spec.dtype)) if spec.kind == 'ndarray' else tf.string


def _sample_shape(spec: FieldSpec) -> tuple[int | None, ...]:
    if spec.kind != 'ndarray':
        return ()
    assert spec.shape is not None
    return (None,) * len(spec.shape) if spec.variable_shape else spec.shape


def _as_array(value: Any, spec: FieldSpec) -> Any:
    """A column's batch as from_generator takes it (str/bytes lists become object arrays)."""
    if isinstance(value, np.ndarray):
        return value
    arr = np.empty(len(value), dtype=object)
    arr[:] = [v.encode('utf-8') if isinstance(v, str) else v for v in value]
    return arr


def build_tf_dataset(
    source: DatasetSource,
    shuffle: bool | BlockShuffle,
    seed: int,
    read_size: int,
    batch_size: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """The ``tf.data.Dataset`` of a source's samples, or of batches of ``batch_size`` (see the module
    documentation)."""
    reader = SourceReader(source)
    fields = source.fields
    make = batch_tuple_type(source.field_names)
    n = len(source.keys)
    epochs = itertools.count()  # this dataset's own pass counter: each pass is the next epoch

    if all(f.kind != 'ndarray' or not f.variable_shape for f in fields):
        size = batch_size or read_size
        stop = n - n % size if batch_size and drop_remainder else n
        lead = size if batch_size and drop_remainder else None
        signature = make(*(tf.TensorSpec((lead, *_sample_shape(f)), _dtype(f)) for f in fields))

        def batches() -> Iterator[Any]:
            order = epoch_order(n, shuffle, seed, next(epochs))
            for start in range(0, stop, size):
                values = reader.read_batch(order[start : start + size])
                yield make(*(_as_array(v, f) for v, f in zip(values, fields)))

        ds = tf.data.Dataset.from_generator(batches, output_signature=signature)
        return ds if batch_size else ds.unbatch()

    signature = make(*(tf.TensorSpec(_sample_shape(f), _dtype(f)) for f in fields))

    def samples() -> Iterator[Any]:
        for i in epoch_order(n, shuffle, seed, next(epochs)).tolist():
            yield make(*reader.read_sample(i))

    ds = tf.data.Dataset.from_generator(samples, output_signature=signature)
    if batch_size:  # variable shapes: padded to the longest in each batch
        return ds.padded_batch(batch_size, drop_remainder=drop_remainder)
    return ds
