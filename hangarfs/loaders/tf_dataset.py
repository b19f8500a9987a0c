"""The TensorFlow dataset: a ``tf.data.Dataset`` of samples with an output signature.

Importing this module imports tensorflow; ``hangarfs.make_tf_dataset`` imports it on first use.

A small generator yields the epoch's order in batches of ``read_size`` indices, and a ``map`` of a
``tf.numpy_function`` reads each batch (one bulk read per column); TensorFlow unbatches the result in
its own code, so Python runs once per ``read_size`` samples, not once per sample. This form was
measured against ``from_generator`` yielding the read batches themselves (``scripts/bench/loaders.py``,
rows ``tf-map`` and ``tf-batches``) and was faster (2.2x at 1M MNIST-shaped samples). Each pass over
the dataset (each Keras epoch) calls the generator again, which takes the next epoch's order.

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
        specs = [tf.TensorSpec((lead, *_sample_shape(f)), _dtype(f)) for f in fields]

        def index_batches() -> Iterator[np.ndarray]:
            order = epoch_order(n, shuffle, seed, next(epochs))
            for start in range(0, stop, size):
                yield order[start : start + size]

        def read(indices: np.ndarray) -> list[Any]:
            values = reader.read_batch(indices)
            return [_as_array(v, f) for v, f in zip(values, fields)]

        def fetch(indices: Any) -> Any:
            tensors = tf.numpy_function(read, [indices], [s.dtype for s in specs], stateful=True)
            for t, spec in zip(tensors, specs):
                t.set_shape(spec.shape)
            return make(*tensors)

        orders = tf.data.Dataset.from_generator(
            index_batches, output_signature=tf.TensorSpec((lead,), tf.int64)
        )
        ds = orders.map(fetch)
        return ds if batch_size else ds.unbatch()

    signature = make(*(tf.TensorSpec(_sample_shape(f), _dtype(f)) for f in fields))

    def samples() -> Iterator[Any]:
        for i in epoch_order(n, shuffle, seed, next(epochs)).tolist():
            yield make(*reader.read_sample(i))

    ds = tf.data.Dataset.from_generator(samples, output_signature=signature)
    if batch_size:  # variable shapes: padded to the longest in each batch
        return ds.padded_batch(batch_size, drop_remainder=drop_remainder)
    return ds
