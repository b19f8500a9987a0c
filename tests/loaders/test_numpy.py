"""The numpy dataset over real repositories: batches of stacked arrays, shuffle, drop_last, seed,
epochs, single samples, Hangar's collate_fn contract, and a pinned commit."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import numpy as np
import pytest

from hangarfs import make_numpy_dataset
from tests.loaders.conftest import DatasetRepo, N, make_images, variable_sample


def epoch_ids(ds: Any) -> list[int]:
    return [int(k) for b in ds for k in b.id]


def test_batches_of_stacked_arrays(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    ds = make_numpy_dataset(
        [co['images'], co['labels'], co['ids']],
        batch_size=128,
        shuffle=True,
        drop_last=True,
        seed=0,
        field_names=('image', 'label', 'id'),
    )
    assert len(ds) == N // 128 and ds.num_samples == N
    batches = list(ds)
    assert len(batches) == 4
    for images, labels, ids in batches:  # a BatchTuple unpacks like a tuple
        assert images.shape == (128, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (128, 1) and ids.shape == (128,)
        np.testing.assert_array_equal(images, dataset_repo.images[ids])
        np.testing.assert_array_equal(labels, dataset_repo.labels[ids])
    seen = epoch_ids(batches)
    assert len(set(seen)) == 512 and seen != sorted(seen)


def test_seed_epochs_and_drop_last(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()

    def make(**kw: Any) -> Any:
        return make_numpy_dataset([co['ids']], batch_size=100, field_names=('id',), **kw)

    ds = make(seed=1)
    first, second = epoch_ids(ds), epoch_ids(ds)
    assert sorted(first) == sorted(second) == list(range(N)) and first != second
    assert epoch_ids(make(seed=1)) == first
    assert epoch_ids(make(seed=2)) != first
    again = make(seed=1)
    again.set_epoch(1)
    assert epoch_ids(again) == second
    assert epoch_ids(make(shuffle=False)) == list(range(N))
    odd = make_numpy_dataset([co['ids']], batch_size=256, shuffle=False, field_names=('id',))
    assert [len(b.id) for b in odd] == [256, 256, 88] and len(odd) == 3
    odd.drop_last = True
    assert [len(b.id) for b in odd] == [256, 256]
    blocks = epoch_ids(make(shuffle='blocks', seed=0))
    assert sorted(blocks) == list(range(N))


def test_single_samples_and_collate_fn(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    ds = make_numpy_dataset([co['ids'], co['captions'], co['shapes']], shuffle=False)
    first = next(iter(ds))
    assert first.ids == 0 and first.captions == 'sample 0'
    np.testing.assert_array_equal(first.shapes, variable_sample(0))
    assert len(ds) == N
    batched = make_numpy_dataset([co['ids'], co['captions'], co['shapes']], batch_size=3, shuffle=False)
    b = next(iter(batched))
    assert b.ids.tolist() == [0, 1, 2] and b.captions == ['sample 0', 'sample 1', 'sample 2']
    assert [s.shape for s in b.shapes] == [(1, 3), (2, 3), (3, 3)]
    seen: list[Any] = []

    def collate(samples: list[Any]) -> Any:  # Hangar's contract: the list of samples of a batch
        seen.append(samples)
        return np.stack([s.ids for s in samples])

    custom = make_numpy_dataset([co['ids'], co['captions']], batch_size=4, shuffle=False, collate_fn=collate)
    assert next(iter(custom)).tolist() == [0, 1, 2, 3]
    assert seen[0][2].captions == 'sample 2' and type(seen[0][2]).__name__ == 'BatchTuple'


def test_the_commit_is_pinned(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader(branch='master')
    ds = make_numpy_dataset([co['images'], co['ids']], batch_size=100, seed=0, field_names=('image', 'id'))
    it = iter(ds)
    batches = [next(it)]
    with closing(dataset_repo.repo.checkout(write=True)) as wco:
        wco['images'].update_batch(list(range(N)), make_images(N, 1))
        wco.commit('replace every image')
    batches += list(it)
    for images, ids in batches:
        np.testing.assert_array_equal(images, dataset_repo.images[ids])


def test_bad_options(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    with pytest.raises(ValueError, match='batch_size must be an int >= 1'):
        make_numpy_dataset([co['ids']], batch_size=0)
    with pytest.raises(TypeError, match='collate_fn must be callable'):
        make_numpy_dataset([co['ids']], batch_size=2, collate_fn='stack')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='shuffle must be'):
        make_numpy_dataset([co['ids']], shuffle='chunks')
