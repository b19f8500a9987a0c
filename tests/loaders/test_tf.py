"""The TensorFlow dataset over real repositories: output signature, values, epochs and seeds, direct
batches, str and variable-shape columns, a pinned commit, and bad inputs."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import numpy as np
import pytest

from hangarfs import ColumnKeysMismatch, DatasetError, make_tensorflow_dataset, make_tf_dataset
from tests.loaders.conftest import DatasetRepo, N, make_images, variable_sample


def ids_of(ds: Any) -> list[int]:
    return [int(x) for b in ds for x in b.id.numpy().reshape(-1)]


def test_samples_with_an_output_signature(dataset_repo: DatasetRepo, tf: Any) -> None:
    co = dataset_repo.reader()
    cols = [co['images'], co['labels'], co['ids']]
    ds = make_tf_dataset(cols, field_names=('image', 'label', 'id'), seed=0)
    spec = ds.element_spec
    assert type(spec).__name__ == 'BatchTuple'
    assert spec.image == tf.TensorSpec((28, 28), tf.uint8)
    assert spec.label == tf.TensorSpec((1,), tf.int64) and spec.id == tf.TensorSpec((), tf.int64)
    images, labels, ids = [], [], []
    for image, label, key in ds.batch(128):  # a BatchTuple unpacks like a tuple
        images.append(image.numpy())
        labels.append(label.numpy())
        ids.append(key.numpy())
    order = np.concatenate(ids)
    assert sorted(order.tolist()) == list(range(N)) and order.tolist() != list(range(N))
    np.testing.assert_array_equal(np.concatenate(images), dataset_repo.images[order])
    np.testing.assert_array_equal(np.concatenate(labels), dataset_repo.labels[order])


def test_epochs_seeds_and_order(dataset_repo: DatasetRepo, tf: Any) -> None:
    co = dataset_repo.reader()
    cols = [co['ids']]
    ds = make_tf_dataset(cols, seed=7, field_names=('id',))
    first, second = ids_of(ds.batch(100)), ids_of(ds.batch(100))
    assert sorted(first) == sorted(second) == list(range(N)) and first != second  # each pass: a new epoch
    again = make_tf_dataset(cols, seed=7, field_names=('id',))
    assert ids_of(again.batch(100)) == first  # the same seed, the same orders
    assert ids_of(make_tf_dataset(cols, shuffle=False, field_names=('id',)).batch(100)) == list(range(N))
    blocks = ids_of(make_tf_dataset(cols, shuffle='blocks', seed=1, field_names=('id',)).batch(100))
    assert sorted(blocks) == list(range(N))
    assert make_tensorflow_dataset is make_tf_dataset


def test_direct_batches(dataset_repo: DatasetRepo, tf: Any) -> None:
    co = dataset_repo.reader()
    ds = make_tf_dataset([co['images'], co['ids']], field_names=('image', 'id'), batch_size=128, seed=0)
    batches = list(ds)
    assert [b.id.shape[0] for b in batches] == [128] * 4 + [N - 512]
    assert ds.element_spec.image.shape.as_list() == [None, 28, 28]
    order = np.concatenate([b.id.numpy() for b in batches])
    images = np.concatenate([b.image.numpy() for b in batches])
    np.testing.assert_array_equal(images, dataset_repo.images[order])
    dropped = make_tf_dataset([co['ids']], field_names=('id',), batch_size=128, drop_remainder=True)
    assert dropped.element_spec.id.shape.as_list() == [128]
    assert len(ids_of(dropped)) == 512


def test_str_and_variable_shape_columns(dataset_repo: DatasetRepo, tf: Any) -> None:
    co = dataset_repo.reader()
    ds = make_tf_dataset([co['captions'], co['shapes'], co['ids']], shuffle=False)
    assert ds.element_spec.captions == tf.TensorSpec((), tf.string)
    assert ds.element_spec.shapes.shape.as_list() == [None, None]
    for k, sample in enumerate(ds.take(5)):
        assert sample.captions.numpy() == f'sample {k}'.encode()
        np.testing.assert_array_equal(sample.shapes.numpy(), variable_sample(k))
    texts = make_tf_dataset([co['captions']], shuffle=False).batch(4)
    assert next(iter(texts)).captions.numpy().tolist() == [f'sample {k}'.encode() for k in range(4)]
    padded = next(iter(make_tf_dataset([co['shapes']], shuffle=False, batch_size=4)))
    assert padded.shapes.shape == (4, 4, 3)  # padded to the longest sample of the batch
    np.testing.assert_array_equal(padded.shapes.numpy()[1, :2], variable_sample(1))
    assert not padded.shapes.numpy()[1, 2:].any()


def test_the_commit_is_pinned(dataset_repo: DatasetRepo, tf: Any) -> None:
    co = dataset_repo.reader(branch='master')
    ds = make_tf_dataset([co['images'], co['ids']], field_names=('image', 'id'), batch_size=100, seed=0)
    it = iter(ds)
    batches = [next(it)]
    with closing(dataset_repo.repo.checkout(write=True)) as wco:
        wco['images'].update_batch(list(range(N)), make_images(N, 1))
        wco.commit('replace every image')
    co.close()
    batches += list(it)
    for epoch in (batches, list(ds)):
        order = np.concatenate([b.id.numpy() for b in epoch])
        assert sorted(order.tolist()) == list(range(N))
        images = np.concatenate([b.image.numpy() for b in epoch])
        np.testing.assert_array_equal(images, dataset_repo.images[order])


def test_bad_inputs(dataset_repo: DatasetRepo, tf: Any) -> None:
    co = dataset_repo.reader()
    with pytest.raises(ColumnKeysMismatch, match="column 'partial' lacks 3"):
        make_tf_dataset([co['ids'], co['partial']])
    with pytest.raises(ValueError, match="shuffle must be True, False, 'blocks'"):
        make_tf_dataset([co['ids']], shuffle='yes')
    with pytest.raises(ValueError, match='batch_size must be an int >= 1'):
        make_tf_dataset([co['ids']], batch_size=0)
    with pytest.raises(ValueError, match='seed must be a non-negative int'):
        make_tf_dataset([co['ids']], seed=-1)
    with (
        closing(dataset_repo.repo.checkout(write=True)) as wco,
        pytest.raises(DatasetError, match='writer checkout'),
    ):
        make_tf_dataset([wco['ids']])
