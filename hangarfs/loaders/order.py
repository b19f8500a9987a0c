"""The order a loader visits samples in: key order, a full shuffle, or a block shuffle.

A full shuffle (``shuffle=True``) draws every epoch's order uniformly at random: each batch is a
sample of the whole data set, and every batch touches storage all over it.

A block shuffle (``shuffle='blocks'`` or ``shuffle=BlockShuffle(...)``) is the cheap order for data
sets that do not fit the page cache, as WebDataset's shards and FFCV's quasi-random order are: it
cuts the index range into blocks of ``block_size`` consecutive samples, visits the blocks in random
order, and shuffles samples within windows of ``window`` samples (``window // block_size`` blocks).
Samples written in key order (``update_batch``, ``hangarfs import``) are stored in that order, so a
block is a run of neighbouring stored chunks, and one window's reads stay within a few files'
regions that are each read once per epoch.

The statistical trade-off: a batch is drawn from one window, so it holds samples of only about
``window // block_size`` blocks, not of the whole data set. Where neighbouring keys are alike (data
sorted by class, frames of one video, one source after another), batches are less varied than
under a full shuffle and gradient estimates noisier, or biased within an epoch. A larger window
(or smaller blocks) brings it closer to a full shuffle at the cost of a larger working set
(``window`` samples); a data set whose key order carries no structure loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BlockShuffle:
    """Visit blocks of ``block_size`` consecutive samples in random order, shuffling samples within
    windows of ``window`` samples (see the module documentation for the trade-off)."""

    block_size: int = 1024
    window: int = 16384

    def __post_init__(self) -> None:
        for name in ('block_size', 'window'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'BlockShuffle.{name} must be an int >= 1, got {value!r} instead')


def check_shuffle(shuffle: Any) -> bool | BlockShuffle:
    """``True``/``False``, ``'blocks'`` (a default :class:`BlockShuffle`) or a BlockShuffle."""
    if isinstance(shuffle, (bool, np.bool_)):
        return bool(shuffle)
    if isinstance(shuffle, BlockShuffle):
        return shuffle
    if shuffle == 'blocks':
        return BlockShuffle()
    raise ValueError(
        f"shuffle must be True, False, 'blocks' or a BlockShuffle(block_size=..., window=...), "
        f'got {shuffle!r} instead'
    )


def check_seed(seed: Any) -> int:
    """A seed for the epoch orders: the given int, or a fresh random one when None."""
    if seed is None:
        return int(np.random.SeedSequence().entropy) & ((1 << 63) - 1)  # type: ignore[arg-type]
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    raise ValueError(f'seed must be a non-negative int or None, got {seed!r} instead')


def epoch_order(n: int, shuffle: bool | BlockShuffle, seed: int, epoch: int) -> np.ndarray:
    """The indices 0..n-1 in the order epoch ``epoch`` visits them (the same for the same arguments)."""
    if shuffle is False:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([seed, epoch])
    if shuffle is True:
        return rng.permutation(n).astype(np.int64, copy=False)
    return block_order(n, shuffle, rng)


def block_order(n: int, spec: BlockShuffle, rng: np.random.Generator) -> np.ndarray:
    """Blocks of consecutive indices in random order, then a shuffle within each window."""
    size = spec.block_size
    blocks = rng.permutation(-(-n // size))
    order = (blocks[:, None] * size + np.arange(size)[None, :]).ravel()
    order = order[order < n]  # the last block may be short
    for start in range(0, n, spec.window):
        rng.shuffle(order[start : start + spec.window])
    return order.astype(np.int64, copy=False)


def batch_slices(n: int, batch_size: int, drop_last: bool) -> list[slice]:
    """Positions of each batch in an epoch's order."""
    stop = n - n % batch_size if drop_last else n
    return [slice(s, min(s + batch_size, n)) for s in range(0, stop, batch_size)]
