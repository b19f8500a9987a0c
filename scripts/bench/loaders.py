#!/usr/bin/env python
"""Dataloader benchmark (issue 11): hangarfs's loaders beside the other ways to feed a DataLoader.

    .venv/bin/python scripts/bench/loaders.py --json /tmp/loaders.json          # 1M MNIST + 20k ImageNet
    .venv/bin/python scripts/bench/loaders.py --n 20000 --imagenet-n 300 --max-seconds 20   # smoke, ~2 min
    .venv/bin/python scripts/bench/loaders.py --workdir /var/tmp/hfs-loaders   # keep the built stores

Workloads: ``--n`` MNIST-shaped samples from the Hangar anchor's ``make_data`` (images (784,) uint8,
labels (1,) int64, keys 0..N-1), and ``--imagenet-n`` ImageNet-shaped ones (images (3, 224, 224)
uint8: random 28x28 colour images scaled up 8x plus noise, so they compress somewhat; labels in
0..999). Each is written once into every store (``--workdir`` keeps them for the next run): a
hangarfs repository (default backends: hdf5 for images, inline for labels), a Hangar 0.5.2
repository (built and read by ``--hangar-python``), a Lance dataset (``pylance``: ``pip install -e
'.[bench]'``), a directory of one ``.npy`` file per sample and column, and ``images.npy`` /
``labels.npy`` for the in-memory reference.

Every case is one fresh process (cold in-process caches; the OS page cache is warm: every store's
files are read once, untimed, before the first case that reads it) running one epoch of ``DataLoader(ds,
batch_size=256, sampler=P, num_workers=W)`` where P is a random permutation (``shuffle=True``'s
order, drawn up front so that the case can check what it read), for W in 0 and 2, and timing from
the creation of the loader's iterator to the last batch (worker start-up included), or until
``--max-seconds`` have passed (the table then says what fraction of the epoch it read):

- ``memory``: ``TensorDataset`` over the arrays in memory: the reference (ratio = x / this);
- ``hangarfs``: ``make_torch_dataset``, plain DataLoader (the default collate);
- ``hangarfs+collate``: the same with ``collate_fn=ds.collate_fn`` (the batch as read);
- ``hangarfs+blocks``: the same with ``sampler=ds.block_sampler()`` (blocks of 1024 consecutive keys in
  random order, shuffled within windows of 16384: the chunk-aware order and its cache hits);
- ``get_batch`` (W = 0): ``column.get_batch`` per batch in the same order, no DataLoader: the engine's
  bulk read path alone, the floor of the two rows above;
- ``hangar``: Hangar 0.5.2's ``make_torch_dataset`` (its namedtuples, per-sample ``__getitem__``);
- ``lance``: a map-style Dataset whose ``__getitems__`` is one ``LanceDataset.take`` (its random access
  path), returning samples for the default collate, opened lazily in each worker (Lance warns
  against using a dataset across fork);
- ``npy-dir``: a plain Dataset that ``numpy.load``\\ s ``images/K.npy`` and ``labels/K.npy``;
- ``mount``: the same Dataset over ``hangarfs mount`` of the repository's commit.

TensorFlow (``--tf``, MNIST only, one process per case): ``tf-memory`` (``from_tensor_slices`` of the
arrays, ``shuffle(N)``, ``batch(256)``), ``tf-batches`` (``make_tf_dataset(...).batch(256)``: the
loader reads bulk reads of 256, unbatched and batched again), ``tf-direct`` (``batch_size=256``:
batches straight from the bulk reads), the two forms ``make_tf_dataset`` was chosen between:
``tf-generator`` (``from_generator`` yielding the bulk reads themselves) and ``tf-map`` (a shuffled
index array, batched, ``map`` of a ``tf.numpy_function`` doing the bulk read; ``make_tf_dataset``
now reads this way), and ``numpy`` (``make_numpy_dataset(batch_size=256)``).

Output: a Markdown table, a marker line and one JSON document (``--json FILE`` too). ``--profile DIR``
writes a cProfile dump of each hangarfs case with W = 0.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import (
    DEFAULT_HANGARFS,
    ROOT,
    Mounts,
    Scratch,
    anchor_functions,
    load_sample,
    log,
    machine_info,
    workdir_setup,
    write_npy_files,
)

JSON_MARKER = '=== loaders benchmark JSON ==='
RESULT_MARKER = '=== case result ==='
BATCH = 256
IMAGENET_SHAPE = (3, 224, 224)
IMAGENET_SEED = 20261204
STORE_FORMAT = 1  # bump when what the builders write changes
TORCH_CASES = (
    'memory',
    'hangarfs',
    'hangarfs+collate',
    'hangarfs+blocks',
    'get_batch',
    'hangar',
    'lance',
    'npy-dir',
    'mount',
)
TF_CASES = ('tf-memory', 'tf-batches', 'tf-direct', 'tf-generator', 'tf-map', 'numpy')


def find_anchor() -> Path:
    for base in (ROOT.parent, ROOT.parent.parent):
        path = base / 'shared' / 'bench' / 'hangar_anchor.py'
        if path.exists():
            return path
    return ROOT.parent / 'shared' / 'bench' / 'hangar_anchor.py'


@dataclass(frozen=True)
class Workload:
    name: str
    n: int
    shape: tuple[int, ...]

    @property
    def image_bytes(self) -> int:
        return int(np.prod(self.shape))

    @property
    def dir_name(self) -> str:
        return f'{self.name}-{self.n}'


# ============================================================================ building the stores


def imagenet_chunk(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """ImageNet-shaped samples ``start..stop`` (each 1000-sample chunk from its own seed)."""
    images, labels = [], []
    for c in range(start // 1000, (stop - 1) // 1000 + 1):
        rng = np.random.default_rng([IMAGENET_SEED, c])
        low = rng.integers(0, 256, size=(1000, 3, 28, 28), dtype=np.uint8)
        big = np.repeat(np.repeat(low, 8, axis=2), 8, axis=3)
        big += rng.integers(0, 16, size=big.shape, dtype=np.uint8)
        images.append(big)
        labels.append(rng.integers(0, 1000, size=(1000, 1), dtype=np.int64))
    lo = start % 1000
    return np.concatenate(images)[lo : lo + stop - start], np.concatenate(labels)[lo : lo + stop - start]


def chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for s in range(0, n, size):
        yield s, min(n, s + size)


class Stores:
    """The stores of one workload under ``WORKDIR/<workload>-<n>/``; ``manifest.json`` records what
    is complete (and how long it took), so a kept work directory is reused."""

    def __init__(self, root: Path, w: Workload, anchor: Path, hangar_python: str | None) -> None:
        self.w = w
        self.dir = root / w.dir_name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.anchor = anchor
        self.hangar_python = hangar_python
        self.manifest_path = self.dir / 'manifest.json'
        try:
            self.manifest: dict[str, Any] = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            self.manifest = {}
        if self.manifest.get('format') != STORE_FORMAT:
            self.manifest = {'format': STORE_FORMAT}
        self.warmed: set[Path] = set()

    def save(self) -> None:
        self.manifest_path.write_text(json.dumps(self.manifest, indent=1))

    def done(self, name: str) -> bool:
        return name in self.manifest

    def build_all(self, want_hangar: bool, want_lance: bool) -> None:
        steps = [('arrays', self.build_arrays), ('hangarfs', self.build_hangarfs), ('npy', self.build_npy)]
        if want_lance:
            steps.append(('lance', self.build_lance))
        if want_hangar:
            steps.append(('hangar', self.build_hangar))
        for name, build in steps:
            if self.done(name):
                continue
            log(f'{self.w.dir_name}: building {name}')
            t0 = time.perf_counter()
            info = build() or {}
            self.manifest[name] = {'seconds': round(time.perf_counter() - t0, 1), **info}
            self.save()

    def images(self) -> np.ndarray:
        return np.load(self.dir / 'images.npy', mmap_mode='r')

    def labels(self) -> np.ndarray:
        return np.load(self.dir / 'labels.npy', mmap_mode='r')

    def build_arrays(self) -> dict[str, Any]:
        w = self.w
        if w.name == 'mnist':
            images, labels = anchor_functions(self.anchor).make_data(w.n)
            np.save(self.dir / 'images.npy', images)
            np.save(self.dir / 'labels.npy', labels)
            return {}
        out = np.lib.format.open_memmap(self.dir / 'images.npy', 'w+', np.uint8, (w.n, *w.shape))
        labels = np.empty((w.n, 1), np.int64)
        for s, e in chunks(w.n, 1000):
            out[s:e], labels[s:e] = imagenet_chunk(s, e)
        out.flush()
        del out
        np.save(self.dir / 'labels.npy', labels)
        return {}

    def build_hangarfs(self) -> dict[str, Any]:
        from hangarfs import Repository

        path = self.dir / 'hangarfs'
        repo = Repository(path, exists=False)
        repo.init(user_name='bench', user_email='bench@example.org', remove_old=True)
        images, labels = self.images(), self.labels()
        step = max(1, (64 << 20) // self.w.image_bytes)
        with closing(repo.checkout(write=True)) as co:
            img = co.add_ndarray_column('images', shape=self.w.shape, dtype=np.uint8)
            lab = co.add_ndarray_column('labels', shape=(1,), dtype=np.int64)
            for s, e in chunks(self.w.n, step):
                img.update_batch(list(range(s, e)), np.ascontiguousarray(images[s:e]))
                lab.update_batch(list(range(s, e)), np.ascontiguousarray(labels[s:e]))
            commit = co.commit('bench data')
            backends = {'images': img.backend_name, 'labels': lab.backend_name}
        return {'commit': commit, 'backends': backends, 'bytes': dir_size(path)}

    def build_npy(self) -> dict[str, Any]:
        images, labels = self.images(), self.labels()
        step = max(1, (64 << 20) // self.w.image_bytes)
        for s, e in chunks(self.w.n, step):
            keys = range(s, e)
            write_npy_files(self.dir / 'npy' / 'images', keys, np.asarray(images[s:e]))
            write_npy_files(self.dir / 'npy' / 'labels', keys, np.asarray(labels[s:e]))
        return {'bytes': dir_size(self.dir / 'npy')}

    def build_lance(self) -> dict[str, Any]:
        import lance
        import pyarrow as pa

        size = self.w.image_bytes
        schema = pa.schema([('image', pa.list_(pa.uint8(), size)), ('label', pa.int64())])
        images, labels = self.images(), self.labels()
        step = max(1, (64 << 20) // size)

        def batches() -> Iterator[Any]:
            for s, e in chunks(self.w.n, step):
                flat = pa.array(np.ascontiguousarray(images[s:e]).reshape(-1))
                column = pa.FixedSizeListArray.from_arrays(flat, size)
                yield pa.record_batch([column, pa.array(np.asarray(labels[s:e, 0]))], schema=schema)

        reader = pa.RecordBatchReader.from_batches(schema, batches())
        lance.write_dataset(reader, str(self.dir / 'data.lance'), schema=schema, mode='overwrite')
        return {'version': lance.__version__, 'bytes': dir_size(self.dir / 'data.lance')}

    def build_hangar(self) -> dict[str, Any]:
        assert self.hangar_python
        out = run_worker(
            self.hangar_python,
            [
                '--build-hangar',
                str(self.dir),
                '--anchor',
                str(self.anchor),
                '--shape',
                *map(str, self.w.shape),
            ],
            timeout=6 * 3600,
        )
        return {**out, 'bytes': dir_size(self.dir / 'hangar')}

    def warm(self, case: str) -> float:
        """Read the files a case reads (untimed) the first time a case reads them, so that every case
        starts from a warm page cache."""
        where = {
            'memory': [self.dir / 'images.npy', self.dir / 'labels.npy'],
            'hangar': [self.dir / 'hangar'],
            'lance': [self.dir / 'data.lance'],
            'npy-dir': [self.dir / 'npy'],
        }.get(case, [self.dir / 'hangarfs'])
        t0 = time.perf_counter()
        for root in where:
            if root in self.warmed:
                continue
            self.warmed.add(root)
            files = [str(root)] if root.is_file() else walk_files(str(root))
            for f in files:
                fd = os.open(f, os.O_RDONLY)
                try:
                    while os.read(fd, 1 << 20):
                        pass
                finally:
                    os.close(fd)
        return time.perf_counter() - t0


def walk_files(root: str) -> Iterator[str]:
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False):
            yield from walk_files(entry.path)
        elif entry.is_file(follow_symlinks=False):
            yield entry.path


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob('*') if p.is_file())


# ============================================================================ datasets of the cases


class NpyFiles:
    """What a project does without version control: ``numpy.load`` of one file per sample and column
    (a torch map-style dataset: ``__len__`` and ``__getitem__``)."""

    def __init__(self, root: str, n: int) -> None:
        self.root, self.n = root, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        import torch

        image = np.load(f'{self.root}/images/{i}.npy')
        label = np.load(f'{self.root}/labels/{i}.npy')
        return torch.from_numpy(image), torch.from_numpy(label)


class LanceTake:
    """Lance's random access: ``__getitems__`` is one ``take`` of the batch's rows; the dataset is opened
    lazily in each process (Lance is multi-threaded and warns against use across fork)."""

    def __init__(self, path: str, n: int, shape: tuple[int, ...]) -> None:
        self.path, self.n, self.shape = path, n, shape
        self._open: dict[int, Any] = {}

    def __len__(self) -> int:
        return self.n

    def _dataset(self) -> Any:
        ds = self._open.get(os.getpid())
        if ds is None:
            import lance

            ds = self._open[os.getpid()] = lance.dataset(self.path)
        return ds

    def __getitems__(self, indices: list[int]) -> list[Any]:
        import torch

        table = self._dataset().take(indices, columns=['image', 'label'])
        flat = table.column('image').combine_chunks().values.to_numpy(zero_copy_only=False)
        images = torch.from_numpy(flat.reshape(len(indices), *self.shape))
        labels = torch.from_numpy(table.column('label').to_numpy().reshape(-1, 1).copy())
        return list(zip(images.unbind(0), labels.unbind(0)))

    def __getitem__(self, i: int) -> Any:
        return self.__getitems__([i])[0]


# ============================================================================ one case (a worker process)


def worker_main(a: argparse.Namespace) -> None:
    store = Path(a.store)
    manifest = json.loads((store / 'manifest.json').read_text())
    shape = tuple(a.shape)
    n = a.n
    images_ref = np.load(store / 'images.npy', mmap_mode='r')
    t_setup = time.perf_counter()
    if a.case in TF_CASES:
        result = run_tf_case(a, store, manifest, n)
    else:
        result = run_torch_case(a, store, manifest, n, shape, images_ref)
    result['setup_s'] = round(time.perf_counter() - t_setup - result['seconds'], 3)
    print(RESULT_MARKER)
    print(json.dumps(result), flush=True)


def permutation(n: int, seed: int) -> list[int]:
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()  # type: ignore[no-any-return]


def check(images: Any, order: Sequence[int], end: int, images_ref: np.ndarray) -> None:
    got = np.asarray(images).reshape(len(images), -1)
    want = np.asarray(images_ref)[list(order[end - len(got) : end])].reshape(len(got), -1)
    if not np.array_equal(got, want):
        raise SystemExit('the last batch read does not hold the expected images')


def run_torch_case(
    a: argparse.Namespace, store: Path, manifest: dict[str, Any], n: int, shape: tuple[int, ...], ref: Any
) -> dict[str, Any]:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    collate = None
    order = permutation(n, a.seed)
    if a.case == 'memory':
        ds: Any = TensorDataset(
            torch.from_numpy(np.load(store / 'images.npy')), torch.from_numpy(np.load(store / 'labels.npy'))
        )
    elif a.case.startswith('hangarfs') or a.case == 'get_batch':
        from hangarfs import Repository, make_torch_dataset

        co = Repository(store / 'hangarfs').checkout(commit=manifest['hangarfs']['commit'])
        if a.case == 'get_batch':
            return time_get_batch(co, order, n, a, ref)
        ds = make_torch_dataset([co['images'], co['labels']], field_names=('image', 'label'))
        collate = ds.collate_fn if a.case == 'hangarfs+collate' else None
        if a.case == 'hangarfs+blocks':
            order = list(ds.block_sampler(seed=a.seed))  # its first epoch's order
    elif a.case == 'hangar':
        ds = hangar_dataset(store, a.anchor)
    elif a.case == 'lance':
        ds = LanceTake(str(store / 'data.lance'), n, shape)
    elif a.case in ('npy-dir', 'mount'):
        ds = NpyFiles(a.mountpoint if a.case == 'mount' else str(store / 'npy'), n)
    else:
        raise SystemExit(f'unknown case {a.case}')
    loader = DataLoader(ds, batch_size=BATCH, sampler=order, num_workers=a.workers, collate_fn=collate)
    prof = cProfile.Profile() if a.profile and a.workers == 0 and a.case.startswith('hangarfs') else None
    seen = 0
    deadline = time.perf_counter() + a.max_seconds
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    it = iter(loader)
    last = None
    for batch in it:
        last = batch[0]
        seen += len(last)
        if time.perf_counter() > deadline:
            break
    seconds = time.perf_counter() - t0
    if prof:
        prof.disable()
        prof.dump_stats(os.path.join(a.profile, f'{a.case}-{Path(a.store).name}.prof'))
    del it
    check(last, order, seen, ref)
    return {'samples': seen, 'seconds': round(seconds, 3), 'complete': seen == n}


def time_get_batch(co: Any, order: list[int], n: int, a: argparse.Namespace, ref: Any) -> dict[str, Any]:
    img, lab = co['images'], co['labels']
    seen = 0
    deadline = time.perf_counter() + a.max_seconds
    t0 = time.perf_counter()
    for s in range(0, n, BATCH):
        keys = order[s : s + BATCH]
        last = img.get_batch(keys)
        lab.get_batch(keys)
        seen += len(keys)
        if time.perf_counter() > deadline:
            break
    seconds = time.perf_counter() - t0
    check(last, order, seen, ref)
    return {'samples': seen, 'seconds': round(seconds, 3), 'complete': seen == n}


def hangar_dataset(store: Path, anchor: str) -> Any:
    """Hangar 0.5.2's make_torch_dataset over the images and labels (in Hangar's interpreter)."""
    sys.path.insert(0, str(Path(anchor).parent))
    import hangar_anchor  # its numpy-compatibility shims, and hangar itself
    from hangar import make_torch_dataset

    with hangar_anchor.quiet():
        co = hangar_anchor.Repository(str(store / 'hangar'), exists=True).checkout()
    return make_torch_dataset([co.columns['images'], co.columns['labels']], field_names=('image', 'label'))


def build_hangar_main(a: argparse.Namespace) -> None:
    """Writes the Hangar 0.5.2 repository of a store (in Hangar's interpreter), as the anchor does."""
    sys.path.insert(0, str(Path(a.anchor).parent))
    import hangar_anchor

    store = Path(a.build_hangar)
    images = np.load(store / 'images.npy', mmap_mode='r')
    labels = np.load(store / 'labels.npy', mmap_mode='r')
    repo = hangar_anchor.init_repo(str(store / 'hangar'))
    t0 = time.perf_counter()
    with hangar_anchor.quiet():
        co = repo.checkout(write=True)
        img = co.add_ndarray_column('images', shape=tuple(a.shape), dtype=np.uint8)
        lab = co.add_ndarray_column('labels', shape=(1,), dtype=np.int64)
    for s, e in chunks(len(images), 10_000):
        hangar_anchor.write_samples(img, range(s, e), np.asarray(images[s:e]))
        hangar_anchor.write_samples(lab, range(s, e), np.asarray(labels[s:e]))
    with hangar_anchor.quiet():
        co.commit('bench data')
        co.close()
    print(RESULT_MARKER)
    print(
        json.dumps(
            {'ingest_s': round(time.perf_counter() - t0, 1), 'hangar': hangar_anchor.hangar.__version__}
        )
    )


def run_tf_case(a: argparse.Namespace, store: Path, manifest: dict[str, Any], n: int) -> dict[str, Any]:
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    import tensorflow as tf

    from hangarfs import Repository, make_numpy_dataset, make_tf_dataset
    from hangarfs.loaders.source import SourceReader, resolve_source

    co = Repository(store / 'hangarfs').checkout(commit=manifest['hangarfs']['commit'])
    cols = [co['images'], co['labels']]
    names = ('image', 'label')
    if a.case == 'tf-memory':
        arrays = (np.load(store / 'images.npy'), np.load(store / 'labels.npy'))
        ds: Any = tf.data.Dataset.from_tensor_slices(arrays).shuffle(n, seed=a.seed).batch(BATCH)
    elif a.case == 'tf-batches':
        ds = make_tf_dataset(cols, field_names=names, seed=a.seed).batch(BATCH)
    elif a.case == 'tf-direct':
        ds = make_tf_dataset(cols, field_names=names, seed=a.seed, batch_size=BATCH)
    elif a.case == 'tf-generator':
        reader = SourceReader(resolve_source(cols, None, None, names))
        order = np.random.default_rng(a.seed).permutation(n)
        spec = (tf.TensorSpec((None, *cols[0].shape), tf.uint8), tf.TensorSpec((None, 1), tf.int64))

        def batches() -> Iterator[Any]:
            for s in range(0, n, BATCH):
                images, labels = reader.read_batch(order[s : s + BATCH])
                yield images, labels

        ds = tf.data.Dataset.from_generator(batches, output_signature=spec)
    elif a.case == 'tf-map':
        reader = SourceReader(resolve_source(cols, None, None, names))
        shape = tuple(cols[0].shape)

        def read(idx: Any) -> Any:
            images, labels = reader.read_batch(idx)
            return images, labels

        def fetch(idx: Any) -> Any:
            images, labels = tf.numpy_function(read, [idx], (tf.uint8, tf.int64))
            images.set_shape((None, *shape))
            labels.set_shape((None, 1))
            return images, labels

        order = np.random.default_rng(a.seed).permutation(n)
        ds = tf.data.Dataset.from_tensor_slices(order).batch(BATCH).map(fetch)
    elif a.case == 'numpy':
        ds = make_numpy_dataset(cols, batch_size=BATCH, seed=a.seed, field_names=names)
    else:
        raise SystemExit(f'unknown case {a.case}')
    seen = 0
    deadline = time.perf_counter() + a.max_seconds
    t0 = time.perf_counter()
    for batch in ds:
        seen += len(batch[0])
        if time.perf_counter() > deadline:
            break
    seconds = time.perf_counter() - t0
    return {'samples': seen, 'seconds': round(seconds, 3), 'complete': seen == n}


# ============================================================================ the runner


def run_worker(python: str, args: list[str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        [python, str(Path(__file__).resolve()), *args], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0 or RESULT_MARKER not in proc.stdout:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        raise RuntimeError(f'exit {proc.returncode}: ' + ' | '.join(tail))
    return json.loads(proc.stdout.split(RESULT_MARKER, 1)[1].strip().splitlines()[0])  # type: ignore[no-any-return]


@dataclass
class Row:
    workload: str
    case: str
    workers: int | None
    samples: int = 0
    seconds: float = 0.0
    complete: bool = False
    rate: float | None = None
    mb_s: float | None = None
    error: str = ''
    setup_s: float = 0.0
    warm_s: float = 0.0


def run_cases(
    a: argparse.Namespace, stores: Stores, mounts: Mounts, hangar_ok: bool, lance_ok: bool
) -> list[Row]:
    w = stores.w
    rows: list[Row] = []
    cases = [c for c in TORCH_CASES if (c != 'hangar' or hangar_ok) and (c != 'lance' or lance_ok)]
    if a.tf and w.name == 'mnist':
        cases += list(TF_CASES)
    if a.cases:
        cases = [c for c in cases if c in a.cases]
    mountpoint = stores.dir / 'mnt'
    commit = stores.manifest['hangarfs']['commit']
    with mounts.mounted(stores.dir / 'hangarfs', mountpoint, '--ref', commit):
        for workers in a.only_workers:
            for case in cases:
                if workers and case in ('get_batch', *TF_CASES):
                    continue
                row = Row(w.name, case, None if case in TF_CASES else workers)
                python = a.hangar_python if case == 'hangar' else sys.executable
                args = [
                    '--case', case, '--store', str(stores.dir), '--n', str(w.n), '--workers', str(workers),
                    '--shape', *map(str, w.shape), '--max-seconds', str(a.max_seconds), '--seed', str(a.seed),
                    '--anchor', str(a.anchor), '--mountpoint', str(mountpoint),
                ]  # fmt: skip
                if a.profile:
                    args += ['--profile', a.profile]
                row.warm_s = round(stores.warm(case), 2)
                log(f'{w.dir_name}: {case}, num_workers={workers}')
                try:
                    out = run_worker(python, args, timeout=a.max_seconds * 4 + 900)
                except (RuntimeError, subprocess.TimeoutExpired) as err:
                    row.error = str(err)[:300]
                    log(f'  failed: {row.error}')
                else:
                    row.samples, row.seconds, row.complete = out['samples'], out['seconds'], out['complete']
                    row.setup_s = out.get('setup_s', 0.0)
                    row.rate = row.samples / row.seconds
                    row.mb_s = row.rate * w.image_bytes / 1e6
                    log(f'  {row.rate:,.0f} samples/s ({row.samples:,} in {row.seconds:.1f} s)')
                rows.append(row)
    return rows


def render(rows: list[Row]) -> str:
    def rate_of(workload: str, case: str, workers: int | None) -> float | None:
        for r in rows:
            if (r.workload, r.case, r.workers) == (workload, case, workers):
                return r.rate
        return None

    out = [
        '| workload | loader | workers | samples/s | image MB/s | vs in-memory | hangarfs vs it | read |',
        '|---|---|---:|---:|---:|---:|---:|---|',
    ]
    for r in rows:
        ref_case = 'tf-memory' if r.case in TF_CASES else 'memory'
        ref = rate_of(r.workload, ref_case, r.workers)
        ours_case = 'tf-batches' if r.case in TF_CASES else 'hangarfs'
        ours = rate_of(r.workload, ours_case, r.workers)
        if r.error:
            out.append(f'| {r.workload} | {r.case} | {r.workers} | failed: {r.error[:80]} | | | | |')
            continue
        vs_mem = f'{r.rate / ref:.3f}x' if r.rate and ref else '–'
        vs_it = f'{ours / r.rate:.2f}x' if r.rate and ours and r.case not in (ref_case, ours_case) else '–'
        read = 'epoch' if r.complete else f'{r.samples:,} in {r.seconds:.0f} s'
        workers = '–' if r.workers is None else str(r.workers)
        rate = f'{r.rate:,.0f} | {r.mb_s:,.1f}'
        out.append(f'| {r.workload} | {r.case} | {workers} | {rate} | {vs_mem} | {vs_it} | {read} |')
    return '\n'.join(out)


def runner_main(a: argparse.Namespace) -> None:
    t_all = time.perf_counter()
    scratch = Scratch()
    mounts = Mounts(a.hangarfs)
    root = workdir_setup(a.workdir, a.keep, scratch, 'hfs-loaders-')
    if a.profile:
        Path(a.profile).mkdir(parents=True, exist_ok=True)
    hangar_ok, hangar_note = hangar_available(a.hangar_python)
    lance_ok, lance_note = module_available('lance')
    for note in (hangar_note, lance_note):
        if note:
            log(note)
    workloads = [Workload('mnist', a.n, (784,))]
    if a.imagenet_n:
        workloads.append(Workload('imagenet', a.imagenet_n, IMAGENET_SHAPE))
    report: dict[str, Any] = {
        'argv': sys.argv[1:],
        'date': time.strftime('%Y-%m-%d %H:%M:%S %Z'),
        'machine': machine_info(),
        'load_before': load_sample(),
        'batch_size': BATCH,
        'notes': [n for n in (hangar_note, lance_note) if n],
        'workloads': [],
    }
    tables = []
    try:
        for w in workloads:
            stores = Stores(root, w, a.anchor, a.hangar_python if hangar_ok else None)
            stores.build_all(hangar_ok, lance_ok)
            rows = run_cases(a, stores, mounts, hangar_ok, lance_ok)
            report['workloads'].append(
                {**asdict(w), 'stores': stores.manifest, 'rows': [asdict(r) for r in rows]}
            )
            tables.append(render(rows))
    finally:
        mounts.cleanup()
    report['load_after'] = load_sample()
    report['runtime_s'] = round(time.perf_counter() - t_all, 1)
    print('\n\n'.join(tables))
    print(
        f'\nruntime {report["runtime_s"]:.0f} s; load average {report["load_before"]["loadavg"]:.1f} '
        f'before, {report["load_after"]["loadavg"]:.1f} after'
    )
    print(JSON_MARKER)
    doc = json.dumps(report, indent=1)
    print(doc)
    if a.json:
        Path(a.json).write_text(doc)


def hangar_available(python: str) -> tuple[bool, str]:
    if not python or not Path(python).exists():
        return False, f'Hangar 0.5.2 not run: no interpreter at {python} (../shared/bench/install_hangar.sh)'
    proc = subprocess.run(
        [python, '-c', 'import hangar, torch'], capture_output=True, text=True, cwd='/tmp', check=False
    )
    if proc.returncode != 0:
        return False, (
            f'Hangar 0.5.2 not run: {python} cannot import hangar and torch '
            f'({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}); '
            f'install torch there with {Path(python).parent}/pip install torch==2.13.0'
        )
    return True, ''


def module_available(name: str) -> tuple[bool, str]:
    try:
        __import__(name)
    except ImportError:
        return False, f'{name} not run: not installed (pip install -e ".[bench]")'
    return True, ''


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=1_000_000, help='MNIST-shaped samples (default 1,000,000)')
    p.add_argument('--imagenet-n', type=int, default=20_000, help='ImageNet-shaped samples (0: none)')
    p.add_argument('--max-seconds', type=float, default=60, help='stop a case after this long (default 60)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--workdir', help='where stores are built and kept (default: a temporary directory)')
    p.add_argument('--keep', action='store_true', help='keep the default temporary work directory')
    p.add_argument('--hangar-python', default='/tmp/hangar-venv/bin/python')
    p.add_argument('--hangarfs', default=DEFAULT_HANGARFS, help='the hangarfs command (for the mount)')
    p.add_argument('--anchor', type=Path, default=find_anchor())
    p.add_argument('--tf', action=argparse.BooleanOptionalAction, default=True, help='TensorFlow cases')
    p.add_argument('--profile', metavar='DIR', help='cProfile dumps of the hangarfs cases (workers 0)')
    p.add_argument('--cases', nargs='+', choices=TORCH_CASES + TF_CASES, help='run only these cases')
    p.add_argument('--only-workers', type=int, nargs='+', default=[0, 2], help='worker counts (0 2)')
    p.add_argument('--json', metavar='FILE')
    # worker modes
    p.add_argument('--case', help=argparse.SUPPRESS)
    p.add_argument('--store', help=argparse.SUPPRESS)
    p.add_argument('--workers', type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument('--shape', type=int, nargs='+', help=argparse.SUPPRESS)
    p.add_argument('--mountpoint', help=argparse.SUPPRESS)
    p.add_argument('--build-hangar', help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.build_hangar:
        build_hangar_main(a)
    elif a.case:
        worker_main(a)
    else:
        runner_main(a)


if __name__ == '__main__':
    main()
