"""The PyTorch dataset through real DataLoaders over real repositories: workers (fork and spawn),
persistent workers, samplers, DistributedSampler, pickling, one bulk read per batch, a branch that
moves during an epoch, str and variable-shape columns, and bad inputs."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, Subset

from hangarfs import ColumnKeysMismatch, DatasetError, make_torch_dataset
from hangarfs.loaders.torch_dataset import SampleBatch, TorchDataset, collate_batch
from tests.loaders.conftest import MISSING_FROM_PARTIAL, DatasetRepo, N, make_images, variable_sample

WORKERS = [0, 2]


def image_dataset(d: DatasetRepo, **kwargs: Any) -> TorchDataset:
    co = d.reader(**kwargs)
    return make_torch_dataset([co['images'], co['labels'], co['ids']], field_names=('image', 'label', 'id'))


def check_epoch(batches: Sequence[Any], d: DatasetRepo, images: np.ndarray | None = None) -> None:
    """The batches hold every sample exactly once, each image and label right for its id."""
    images = d.images if images is None else images
    ids = torch.cat([b.id for b in batches]).numpy()
    assert sorted(ids.tolist()) == list(range(N))
    got = torch.cat([b.image for b in batches]).numpy()
    np.testing.assert_array_equal(got, images[ids])
    np.testing.assert_array_equal(torch.cat([b.label for b in batches]).numpy(), d.labels[ids])


@pytest.mark.parametrize('workers', WORKERS)
def test_plain_dataloader_gives_namedtuple_batches(dataset_repo: DatasetRepo, workers: int) -> None:
    ds = image_dataset(dataset_repo)
    loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=workers)
    batches = list(loader)
    assert len(batches) == 10
    first = batches[0]
    assert type(first).__name__ == 'BatchTuple' and first._fields == ('image', 'label', 'id')
    assert first.image.shape == (64, 28, 28) and first.image.dtype == torch.uint8
    assert first.label.shape == (64, 1) and first.label.dtype == torch.int64
    assert first.id.shape == (64,)
    check_epoch(batches, dataset_repo)
    ids = torch.cat([b.id for b in batches]).tolist()
    assert ids != sorted(ids)  # shuffled


class CountingDataset(TorchDataset):
    """Records each __getitem__/__getitems__ call (pid and batch size) in a file, from any process."""

    log: str = ''

    def __getitem__(self, index: int) -> Any:
        self._record(f'item {index}')
        return super().__getitem__(index)

    def __getitems__(self, indices: Sequence[int]) -> SampleBatch:
        self._record(f'items {len(indices)}')
        return super().__getitems__(indices)

    def _record(self, line: str) -> None:
        with open(self.log, 'a') as fh:
            fh.write(f'{os.getpid()} {line}\n')

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), 'log': self.log}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.log = state['log']


@pytest.mark.parametrize('workers', WORKERS)
def test_one_bulk_read_per_batch_equal_to_the_per_sample_path(
    dataset_repo: DatasetRepo, tmp_path: Path, workers: int
) -> None:
    ds = CountingDataset(image_dataset(dataset_repo).source)
    ds.log = str(tmp_path / 'calls.log')
    order = np.random.default_rng(5).permutation(N).tolist()
    loader = DataLoader(ds, batch_size=50, sampler=order, num_workers=workers)
    batches = list(loader)
    calls = Path(ds.log).read_text().splitlines()
    assert [c.split(' ', 1)[1] for c in calls] == ['items 50'] * 12  # one call per batch, no per-item calls
    pids = {c.split()[0] for c in calls}
    assert (pids == {str(os.getpid())}) if workers == 0 else (str(os.getpid()) not in pids)
    fast = list(DataLoader(ds, batch_size=50, sampler=order, num_workers=workers, collate_fn=ds.collate_fn))
    for k, (batch, quick) in enumerate(zip(batches, fast)):
        indices = order[50 * k : 50 * (k + 1)]
        samples = [ds[i] for i in indices]  # the per-sample path
        for field in ('image', 'label', 'id'):
            one_by_one = torch.stack([getattr(s, field) for s in samples])
            assert torch.equal(getattr(batch, field), one_by_one)
            assert torch.equal(getattr(quick, field), one_by_one)
        np.testing.assert_array_equal(batch.image.numpy(), dataset_repo.images[indices])


def test_persistent_workers_and_epochs(dataset_repo: DatasetRepo) -> None:
    ds = image_dataset(dataset_repo)
    loader = DataLoader(ds, batch_size=100, shuffle=True, num_workers=2, persistent_workers=True)
    orders = []
    for _ in range(2):
        batches = list(loader)
        check_epoch(batches, dataset_repo)
        orders.append(torch.cat([b.id for b in batches]).tolist())
    assert orders[0] != orders[1]


def test_distributed_sampler_with_two_replicas_covers_every_index_once(dataset_repo: DatasetRepo) -> None:
    ds = image_dataset(dataset_repo)
    seen: list[int] = []
    for rank in (0, 1):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=3)
        sampler.set_epoch(1)
        indices = list(sampler)
        assert len(indices) == N // 2
        loader = DataLoader(ds, batch_size=64, sampler=sampler, num_workers=0)
        ids = torch.cat([b.id for b in loader]).tolist()
        assert ids == [ds.keys[i] for i in indices]  # read in the sampler's order
        seen += ids
    assert sorted(seen) == list(range(N))


def test_block_sampler(dataset_repo: DatasetRepo) -> None:
    ds = image_dataset(dataset_repo)
    sampler = ds.block_sampler(block_size=50, window=200, seed=0)
    loader = DataLoader(ds, batch_size=40, sampler=sampler, collate_fn=ds.collate_fn)
    first = list(loader)
    check_epoch(first, dataset_repo)
    second = list(loader)
    check_epoch(second, dataset_repo)
    a, b = (torch.cat([x.id for x in e]).tolist() for e in (first, second))
    assert a != b  # each pass is a new epoch
    assert len({i // 50 for i in a[:200]}) == 4  # a window holds whole blocks


def test_pickles_as_its_source_and_spawned_workers_open_their_own_checkout(dataset_repo: DatasetRepo) -> None:
    ds = image_dataset(dataset_repo)
    ds[0]  # opens this process's checkout: none of it may go into the pickle
    data = pickle.dumps(ds)
    assert len(data) < 2000
    assert dataset_repo.images[17].tobytes() not in data
    back = pickle.loads(data)
    assert back.commit == ds.commit and torch.equal(back[17].image, ds[17].image)
    loader = DataLoader(ds, batch_size=100, num_workers=2, multiprocessing_context='spawn')
    check_epoch(list(loader), dataset_repo)


@pytest.mark.parametrize('workers', WORKERS)
def test_a_branch_moving_during_an_epoch_changes_nothing_read(
    dataset_repo: DatasetRepo, workers: int
) -> None:
    ds = image_dataset(dataset_repo, branch='master')
    assert ds.commit == dataset_repo.commit
    loader = DataLoader(ds, batch_size=50, shuffle=True, num_workers=workers, persistent_workers=workers > 0)
    it = iter(loader)
    batches = [next(it)]
    new_images = make_images(N, 1)
    with closing(dataset_repo.repo.checkout(write=True, branch='master')) as wco:  # every image replaced
        wco['images'].update_batch(list(range(N)), new_images)
        wco['ids'].update_batch(list(range(N)), np.zeros(N, np.int64))
        moved = wco.commit('replace every image')
    batches += list(it)
    check_epoch(batches, dataset_repo)
    check_epoch(list(loader), dataset_repo)  # the next epoch too
    fresh = image_dataset(dataset_repo, branch='master')
    assert fresh.commit == moved
    np.testing.assert_array_equal(fresh[9].image.numpy(), new_images[9])


def test_str_and_variable_shape_columns(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    ds = make_torch_dataset([co['captions'], co['shapes'], co['ids']])
    sample = ds[6]
    assert sample.captions == 'sample 6'
    assert torch.equal(sample.shapes, torch.from_numpy(variable_sample(6)))
    order = list(range(N))
    batches = list(DataLoader(ds, batch_size=8, sampler=order, collate_fn=ds.collate_fn))
    assert batches[0].captions == tuple(f'sample {k}' for k in range(8))
    assert [tuple(t.shape) for t in batches[0].shapes] == [(1 + k % 4, 3) for k in range(8)]
    for k, t in enumerate(batches[1].shapes, 8):
        assert torch.equal(t, torch.from_numpy(variable_sample(k)))
    # the default collate stacks only equal shapes; with unequal ones torch says so
    same_shape = list(range(0, N, 4))
    batch = next(iter(DataLoader(ds, batch_size=8, sampler=same_shape)))
    assert batch.shapes.shape == (8, 1, 3) and batch.captions == tuple(f'sample {k}' for k in same_shape[:8])
    with pytest.raises(RuntimeError, match='stack expects each tensor to be equal size'):
        next(iter(DataLoader(ds, batch_size=8, sampler=order)))


def test_subset_forwards_the_bulk_read(dataset_repo: DatasetRepo) -> None:
    ds = image_dataset(dataset_repo)
    sub = Subset(ds, list(range(100, 200)))
    batches = list(DataLoader(sub, batch_size=30, shuffle=True))
    assert sorted(torch.cat([b.id for b in batches]).tolist()) == list(range(100, 200))
    batch = sub.__getitems__([0, 1])
    assert isinstance(batch, SampleBatch) and collate_batch(batch).id.tolist() == [100, 101]
    assert collate_batch([ds[3], ds[4]]).id.tolist() == [3, 4]  # not a SampleBatch: default collate


def test_index_range_keys_and_repr(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader(branch='master')
    ds = make_torch_dataset([co['ids']], index_range=slice(10, 20))
    assert len(ds) == 10 and ds[0].ids.item() == 10 and ds[-1].ids.item() == 19
    assert list(ds.sample_names) == list(range(10, 20))
    assert 'at commit' in repr(ds) and "branch 'master'" in repr(ds) and '10 samples' in repr(ds)
    ds = make_torch_dataset(co['ids'], keys=[7, 3])
    assert [ds[i].ids.item() for i in range(2)] == [7, 3]


def test_bad_inputs(dataset_repo: DatasetRepo) -> None:
    co = dataset_repo.reader()
    ds = make_torch_dataset([co['ids']])
    with pytest.raises(IndexError, match='dataset index 600 is out of range for a dataset of 600 samples'):
        ds[N]
    with pytest.raises(IndexError, match='out of range'):
        ds.__getitems__([0, -601])
    with pytest.raises(TypeError, match='index a dataset with an int'):
        ds['3']  # type: ignore[index]
    with pytest.raises(ColumnKeysMismatch, match=f'lacks {len(MISSING_FROM_PARTIAL)} of the 600 keys'):
        make_torch_dataset([co['ids'], co['partial']])
    with pytest.raises(KeyError, match="no column named 'imgs'"):
        make_torch_dataset([co['imgs']])
    with (
        closing(dataset_repo.repo.checkout(write=True)) as wco,
        pytest.raises(DatasetError, match='writer checkout'),
    ):
        make_torch_dataset([wco['ids']])
    col = co['ids']
    co.close()
    with pytest.raises(RuntimeError, match="column 'ids' belongs to a closed checkout"):
        make_torch_dataset([col])
