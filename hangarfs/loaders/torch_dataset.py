"""The PyTorch dataset: a map-style ``torch.utils.data.Dataset`` over one commit's columns.

Importing this module imports torch; ``hangarfs.make_torch_dataset`` imports it on first use.

A batch is one bulk read: ``DataLoader`` calls ``__getitems__`` once per batch, which reads every
column with one ``get_batch`` and returns a :class:`SampleBatch`. That object serves two collates:

- the default one (``DataLoader(ds, batch_size=256)``, nothing else to say) sees a sequence of
  samples, each a ``BatchTuple`` of views into the batch tensors, and stacks them again;
- :func:`collate_batch` (``collate_fn=ds.collate_fn``) returns the batch tensors as read, skipping
  the per-sample stacking, which costs a few microseconds a sample.

Both give the same batch: a ``BatchTuple`` namedtuple (``batch.image``, ``batch.label``) of tensors
for fixed-shape array columns and of tuples of values for str and bytes columns. A variable-shape
column gives each sample a tensor of its own shape; ``collate_batch`` batches them as a list of
tensors, while the default collate can stack them only when all shapes in the batch agree (torch
raises otherwise): pass ``collate_fn=ds.collate_fn``, or your own collate that pads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, default_collate

from hangarfs.loaders.order import BlockShuffle, check_seed, check_shuffle, epoch_order
from hangarfs.loaders.source import DatasetSource, FieldSpec, KeyList, SourceReader, batch_tuple_type


def _tensor(value: Any, spec: FieldSpec) -> Any:
    """A column's sample or batch as torch wants it: a tensor for arrays, a list of tensors for a batch
    of variable-shape arrays, str and bytes unchanged (a tuple for a batch, as the default collate
    makes)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, list):
        return [torch.from_numpy(a) for a in value] if spec.kind == 'ndarray' else tuple(value)
    return value


class SampleBatch(Sequence[Any]):
    """A batch read in one go (what ``__getitems__`` returns), seen as the sequence of its samples.

    ``fields`` is the batch itself: a ``BatchTuple`` of stacked tensors (and lists); indexing or
    iterating gives per-sample ``BatchTuple`` views, for the default collate and for code written
    for the documented ``__getitems__`` contract (a list of samples).
    """

    __slots__ = ('fields',)

    def __init__(self, fields: Any) -> None:
        self.fields = fields

    def __len__(self) -> int:
        return len(self.fields[0])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return type(self.fields)(*(f[index] for f in self.fields))

    def __iter__(self) -> Iterator[Any]:
        columns = (f.unbind(0) if isinstance(f, torch.Tensor) else f for f in self.fields)
        return map(type(self.fields), *columns)

    def __repr__(self) -> str:
        return f'<SampleBatch of {len(self)} samples: {", ".join(self.fields._fields)}>'


def collate_batch(batch: Any) -> Any:
    """``collate_fn`` for hangarfs datasets: a batch read by ``__getitems__`` is returned as read (no
    per-sample stacking); anything else (a dataset wrapped without ``__getitems__``) goes to torch's
    ``default_collate``."""
    if isinstance(batch, SampleBatch):
        return batch.fields
    return default_collate(batch)


class TorchDataset(Dataset[Any]):
    """Samples of one commit's columns, aligned by key; ``ds[i]`` is a ``BatchTuple`` of tensors.

    Made by :func:`hangarfs.make_torch_dataset`. Pickles as its :class:`DatasetSource` (repository
    path, commit, columns, keys); each process opens its own read-only checkout of the commit on
    first use, so it works with any number of DataLoader workers, fork or spawn, persistent or not.
    """

    def __init__(self, source: DatasetSource) -> None:
        self._reader = SourceReader(source)
        self._tuple = batch_tuple_type(source.field_names)

    # ------------------------------------------------------------------ the Dataset protocol

    def __len__(self) -> int:
        return len(self._reader.source.keys)

    def __getitem__(self, index: int) -> Any:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f'index a dataset with an int, got {type(index).__name__} {index!r}')
        values = self._reader.read_sample(int(index))
        return self._tuple(*(_tensor(v, f) for v, f in zip(values, self._reader.source.fields)))

    def __getitems__(self, indices: Sequence[int]) -> SampleBatch:
        """A whole batch in one read per column (called by DataLoader once per batch)."""
        values = self._reader.read_batch(indices)
        return SampleBatch(self._tuple(*(_tensor(v, f) for v, f in zip(values, self._reader.source.fields))))

    # ------------------------------------------------------------------ helpers and facts

    @property
    def collate_fn(self) -> Any:
        """:func:`collate_batch`: pass ``DataLoader(ds, ..., collate_fn=ds.collate_fn)`` to skip the
        default collate's per-sample stacking."""
        return collate_batch

    def block_sampler(
        self, block_size: int = 1024, window: int = 16384, seed: int | None = None
    ) -> BlockShuffleSampler:
        """A sampler visiting blocks of consecutive samples in random order (see
        :mod:`hangarfs.loaders.order` for when to use it and what it costs in randomness)."""
        return BlockShuffleSampler(len(self), BlockShuffle(block_size, window), seed=seed)

    @property
    def source(self) -> DatasetSource:
        return self._reader.source

    @property
    def commit(self) -> str:
        """The commit every process reads (pinned when the dataset was made)."""
        return self._reader.source.commit

    @property
    def keys(self) -> KeyList:
        """The sample keys in index order (``ds[i]`` is the sample of key ``ds.keys[i]``)."""
        return self._reader.source.keys

    sample_names = keys  # Hangar's name

    @property
    def column_names(self) -> tuple[str, ...]:
        return self._reader.source.column_names

    @property
    def field_names(self) -> tuple[str, ...]:
        return self._reader.source.field_names

    def close(self) -> None:
        """Close this process's checkout (reading again reopens it)."""
        self._reader.close()

    def __repr__(self) -> str:
        return f'<TorchDataset of {self._reader.source.describe()}>'

    def __getstate__(self) -> dict[str, Any]:
        return {'source': self._reader.source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state['source'])  # type: ignore[misc]


class BlockShuffleSampler(Sampler[int]):
    """Indices in a block-shuffled order (see :mod:`hangarfs.loaders.order`), a new order each epoch.

    The epoch advances by itself after each full pass; ``set_epoch(e)`` sets it (as with
    ``DistributedSampler``), and the same seed and epoch always give the same order.
    """

    def __init__(self, length: int, order: BlockShuffle | str = 'blocks', seed: int | None = None) -> None:
        self.length = int(length)
        spec = check_shuffle(order)
        if not isinstance(spec, BlockShuffle):
            raise ValueError(f"BlockShuffleSampler takes 'blocks' or a BlockShuffle, got {order!r}")
        self.order = spec
        self.seed = check_seed(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        order = epoch_order(self.length, self.order, self.seed, self.epoch)
        self.epoch += 1
        return iter(order.tolist())
