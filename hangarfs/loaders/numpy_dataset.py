"""The numpy dataset: an iterable of batches of stacked arrays, for any framework or none.

Each ``for batch in ds`` pass is one epoch, in a new order when shuffling (seeded by ``seed`` and the
epoch number, so runs repeat). A batch is one bulk read per column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from hangarfs.loaders.order import BlockShuffle, batch_slices, epoch_order
from hangarfs.loaders.source import DatasetSource, KeyList, SourceReader, batch_tuple_type


class NumpyDataset:
    """Batches of one commit's columns: ``BatchTuple``s of stacked numpy arrays (lists for str, bytes
    and variable-shape columns), or single samples when ``batch_size`` is None.

    Made by :func:`hangarfs.make_numpy_dataset`. ``len(ds)`` is the number of batches an epoch
    yields; ``ds.num_samples`` the number of samples.
    """

    def __init__(
        self,
        source: DatasetSource,
        batch_size: int | None,
        drop_last: bool,
        shuffle: bool | BlockShuffle,
        seed: int,
        collate_fn: Callable[[list[Any]], Any] | None,
    ) -> None:
        self._reader = SourceReader(source)
        self._tuple = batch_tuple_type(source.field_names)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.seed = seed
        self.collate_fn = collate_fn
        self.epoch = 0

    @property
    def num_samples(self) -> int:
        return len(self._reader.source.keys)

    def __len__(self) -> int:
        if self.batch_size is None:
            return self.num_samples
        return len(batch_slices(self.num_samples, self.batch_size, self.drop_last))

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order the next pass follows (passes advance it by themselves)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[Any]:
        order = epoch_order(self.num_samples, self.shuffle, self.seed, self.epoch)
        self.epoch += 1
        reader, make = self._reader, self._tuple
        if self.batch_size is None:
            for i in order.tolist():
                yield make(*reader.read_sample(i))
            return
        for where in batch_slices(self.num_samples, self.batch_size, self.drop_last):
            values = reader.read_batch(order[where])
            if self.collate_fn is None:
                yield make(*values)
            else:  # Hangar's contract: collate_fn gets the list of samples
                yield self.collate_fn([make(*v) for v in zip(*values)])

    @property
    def source(self) -> DatasetSource:
        return self._reader.source

    @property
    def commit(self) -> str:
        return self._reader.source.commit

    @property
    def keys(self) -> KeyList:
        return self._reader.source.keys

    @property
    def field_names(self) -> tuple[str, ...]:
        return self._reader.source.field_names

    def close(self) -> None:
        """Close this process's checkout (iterating again reopens it)."""
        self._reader.close()

    def __repr__(self) -> str:
        size = f'batches of {self.batch_size}' if self.batch_size else 'single samples'
        return f'<NumpyDataset ({size}, shuffle={self.shuffle}) of {self._reader.source.describe()}>'
