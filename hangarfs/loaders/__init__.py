"""Dataloaders: train from any commit with PyTorch, TensorFlow or plain numpy.

    from hangarfs import Repository, make_torch_dataset
    co = Repository('mnist-repo').checkout(commit='v1.0')
    ds = make_torch_dataset([co['images'], co['labels']], field_names=('image', 'label'))
    loader = torch.utils.data.DataLoader(ds, batch_size=256, shuffle=True, num_workers=2)

What every loader here does the same way:

- **One commit.** A dataset reads the commit its columns' checkout shows, pinned when it is made: a
  branch that moves meanwhile changes nothing it reads. The columns must come from one read-only
  checkout of one commit (a writer checkout is refused: its staged data is not a commit, and other
  processes cannot see it). Closing that checkout afterwards does not affect the dataset, which
  opens its own read-only checkout in each process that reads, on first use.
- **Keys.** ``keys=None`` reads every key, in column order (int keys ascending, then str keys), and
  requires every column to hold the same keys; if they differ, :class:`~hangarfs.ColumnKeysMismatch`
  names the column and the keys it lacks, and ``keys=common_keys(columns)`` reads only the shared
  ones. Given ``keys`` are read in the order given (repeats allowed); each must be in every column.
  ``index_range`` (a slice) then selects part of that list.
- **Samples** are ``BatchTuple`` namedtuples with one field per column, named after the columns or
  ``field_names``. Fixed-shape array columns batch into stacked arrays (tensors); str and bytes
  columns into lists; variable-shape array columns give each sample its own shape (lists in a
  batch; see each loader). Nested columns (with subsamples) are refused.
- **Order**: ``shuffle=True`` draws a full permutation per epoch; ``shuffle='blocks'`` (or a
  :class:`BlockShuffle`) visits blocks of consecutive samples in random order, for data larger
  than the page cache (:mod:`hangarfs.loaders.order` explains the statistical trade-off).

Importing this package imports neither torch nor tensorflow: each ``make_*`` imports its framework
when first called (install them with ``pip install 'hangarfs[torch]'`` or ``'hangarfs[tensorflow]'``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from hangarfs.loaders.numpy_dataset import NumpyDataset
from hangarfs.loaders.order import BlockShuffle, check_seed, check_shuffle
from hangarfs.loaders.source import DatasetSource, KeyList, common_keys, resolve_source

if TYPE_CHECKING:
    from hangarfs.loaders.torch_dataset import TorchDataset


def _framework(module: str, what: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f'{what} needs {extra}, which is not installed here: pip install "hangarfs[{extra}]" ({err})'
        ) from err


def _check_size(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{name} must be an int >= 1, got {value!r} instead')


def make_torch_dataset(
    columns: Any,
    keys: Iterable[Any] | None = None,
    index_range: slice | None = None,
    field_names: Any = None,
) -> TorchDataset:
    """A map-style ``torch.utils.data.Dataset`` over columns of one commit (Hangar's signature).

    ``ds[i]`` is a ``BatchTuple`` of tensors (str/bytes values as they are); a ``DataLoader`` reads
    each batch with one bulk read per column (``__getitems__``) and yields ``BatchTuple`` batches
    (``batch.image``, ``batch.label``). Pass ``collate_fn=ds.collate_fn`` to skip the default
    collate's per-sample stacking, and ``sampler=ds.block_sampler()`` for a block-shuffled order.
    """
    _framework('torch', 'make_torch_dataset', 'torch')
    from hangarfs.loaders.torch_dataset import TorchDataset

    return TorchDataset(resolve_source(columns, keys, index_range, field_names))


def make_tf_dataset(
    columns: Any,
    keys: Iterable[Any] | None = None,
    index_range: slice | None = None,
    shuffle: bool | str | BlockShuffle = True,
    *,
    field_names: Any = None,
    seed: int | None = None,
    read_size: int = 256,
    batch_size: int | None = None,
    drop_remainder: bool = False,
) -> Any:
    """A ``tf.data.Dataset`` of ``BatchTuple`` samples with an output signature (Hangar's signature,
    plus ``field_names``, ``seed``, ``read_size``, ``batch_size`` and ``drop_remainder``).

    Each pass (epoch) visits the samples in a new order when ``shuffle`` (seeded by ``seed`` and the
    pass number), reading ``read_size`` samples per bulk read; batch it with ``.batch(512)``, or ask
    for ``batch_size=512`` to get batches straight from the bulk reads (faster).
    """
    order = check_shuffle(shuffle)
    the_seed = check_seed(seed)
    _check_size('read_size', read_size)
    if batch_size is not None:
        _check_size('batch_size', batch_size)
    _framework('tensorflow', 'make_tf_dataset', 'tensorflow')
    from hangarfs.loaders.tf_dataset import build_tf_dataset

    source = resolve_source(columns, keys, index_range, field_names)
    return build_tf_dataset(source, order, the_seed, read_size, batch_size, bool(drop_remainder))


make_tensorflow_dataset = make_tf_dataset  # the name later Hangar releases use


def make_numpy_dataset(
    columns: Any,
    keys: Iterable[Any] | None = None,
    batch_size: int | None = None,
    drop_last: bool = False,
    shuffle: bool | str | BlockShuffle = True,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    *,
    index_range: slice | None = None,
    field_names: Any = None,
    seed: int | None = None,
) -> NumpyDataset:
    """An iterable of batches: ``BatchTuple``s of stacked numpy arrays (Hangar's signature, plus
    ``index_range``, ``field_names`` and ``seed``).

    ``batch_size=None`` yields single samples. Each pass is an epoch in a new order when
    ``shuffle`` (seeded by ``seed`` and the epoch). ``collate_fn``, if given, receives the list of
    sample ``BatchTuple``s of each batch instead (Hangar's contract; slower).
    """
    if batch_size is not None:
        _check_size('batch_size', batch_size)
    if collate_fn is not None and not callable(collate_fn):
        raise TypeError(f'collate_fn must be callable, got {collate_fn!r}')
    order = check_shuffle(shuffle)
    the_seed = check_seed(seed)
    source = resolve_source(columns, keys, index_range, field_names)
    return NumpyDataset(source, batch_size, bool(drop_last), order, the_seed, collate_fn)


__all__ = [
    'BlockShuffle',
    'DatasetSource',
    'KeyList',
    'NumpyDataset',
    'common_keys',
    'make_numpy_dataset',
    'make_tensorflow_dataset',
    'make_tf_dataset',
    'make_torch_dataset',
]
