#!/usr/bin/env python
"""Train the Hangar tutorial's three-layer MLP on MNIST-shaped data kept in a hangarfs repository.

    python examples/train_mnist.py REPO --make 10000          # make a synthetic repository, train
    python examples/train_mnist.py REPO --ref v1.0 --workers 2 # train from a commit, tag or branch
    hangarfs mount REPO /mnt/mnist --ref v1.0
    python examples/train_mnist.py --mounted /mnt/mnist        # the same training from the mount

From a repository the data comes through ``make_torch_dataset`` and a plain ``DataLoader``. From a
mount, a plain torch ``Dataset`` reads the mounted ``.npy`` files with ``numpy.load``: the code a
project without version control has, unchanged. Both split the samples the same way (the first 80%
of the keys to train on, the rest to test), see them in the same order, and print the same figures
(one JSON line: samples, mean training loss, test accuracy).

The synthetic data (``--make N``) is learnable: each class has a fixed pattern of bright pixels,
and every image is its class's pattern plus noise.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from contextlib import closing
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hangarfs import Repository, make_torch_dataset


def synthetic_mnist(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (784,) uint8 and labels (1,) int64: class pattern plus noise."""
    rng = np.random.default_rng(seed)
    patterns = rng.random((10, 784)) < 0.15
    labels = rng.integers(0, 10, size=n)
    noise = rng.integers(0, 90, size=(n, 784))
    images = np.where(patterns[labels], 160, 0) + noise
    return images.astype(np.uint8), labels.astype(np.int64).reshape(n, 1)


def make_repository(path: str, n: int) -> str:
    """A repository with columns images and labels (keys 0..n-1) at one commit; returns it."""
    images, labels = synthetic_mnist(n)
    repo = Repository(path, exists=False)
    repo.init(user_name='Example', user_email='example@example.org')
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(784,), dtype=np.uint8).update_batch(list(range(n)), images)
        co.add_ndarray_column('labels', shape=(1,), dtype=np.int64).update_batch(list(range(n)), labels)
        return str(co.commit(f'{n} synthetic MNIST-shaped samples'))


class MLP(nn.Module):
    """The tutorial's network: three fully connected layers."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # type: ignore[no-any-return]


def run(train: Dataset[Any], test: Dataset[Any], workers: int, epochs: int, seed: int) -> dict[str, Any]:
    """Train for ``epochs`` and test; batches are (images, labels) pairs, whatever their type."""
    torch.manual_seed(seed)
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(seed)
    loader = DataLoader(train, batch_size=64, shuffle=True, num_workers=workers, generator=order)
    losses = []
    for _ in range(epochs):
        for images, labels in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(images.float() / 255), labels.view(-1))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    correct = total = 0
    with torch.no_grad():
        for images, labels in DataLoader(test, batch_size=256, num_workers=workers):
            correct += int((model(images.float() / 255).argmax(1) == labels.view(-1)).sum())
            total += len(labels)
    mean_loss = float(np.mean(losses))
    return {'train_samples': len(train), 'loss': mean_loss, 'accuracy': correct / total}  # type: ignore[arg-type]


def from_repository(path: str, ref: str, workers: int, epochs: int, seed: int) -> dict[str, Any]:
    """The training through hangarfs loaders, from commit (tag, branch) ``ref``."""
    co = Repository(path).checkout(commit=ref)
    cols = [co['images'], co['labels']]
    n_train = len(co['images']) * 8 // 10
    train = make_torch_dataset(cols, index_range=slice(0, n_train), field_names=('image', 'label'))
    test = make_torch_dataset(cols, index_range=slice(n_train, None), field_names=('image', 'label'))
    return {'commit': co.commit_hash, **run(train, test, workers, epochs, seed)}


class NpyFiles(Dataset[Any]):
    """What a project keeps without version control: a directory of .npy files per column."""

    def __init__(self, root: str, keys: list[int]) -> None:
        self.root = root
        self.keys = keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = self.keys[i]
        image = np.load(os.path.join(self.root, 'images', f'{key}.npy'))
        label = np.load(os.path.join(self.root, 'labels', f'{key}.npy'))
        return torch.from_numpy(image), torch.from_numpy(label)


def from_directory(root: str, workers: int, epochs: int, seed: int) -> dict[str, Any]:
    """The same training from a directory of .npy files (a hangarfs mount, or any copy of one)."""
    files = glob.glob(os.path.join(root, 'images', '*.npy'))
    keys = sorted(int(os.path.basename(f)[: -len('.npy')]) for f in files)
    n_train = len(keys) * 8 // 10
    train, test = NpyFiles(root, keys[:n_train]), NpyFiles(root, keys[n_train:])
    result = run(train, test, workers, epochs, seed)
    commit_file = os.path.join(root, '.hangarfs', 'commit.json')
    if os.path.exists(commit_file):
        with open(commit_file) as fh:
            result = {'commit': json.load(fh)['commit'], **result}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('repo', nargs='?', help='the repository to train from')
    parser.add_argument('--mounted', metavar='DIR', help='train from a mounted commit (or a copy of one)')
    parser.add_argument('--make', type=int, metavar='N', help='first make a repository of N samples')
    parser.add_argument('--ref', default='master', help='commit, tag or branch (default master)')
    parser.add_argument('--workers', type=int, default=0, help='DataLoader worker processes (default 0)')
    parser.add_argument('--epochs', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    a = parser.parse_args(argv)
    if a.mounted:
        result = from_directory(a.mounted, a.workers, a.epochs, a.seed)
    elif a.repo:
        if a.make:
            make_repository(a.repo, a.make)
        result = from_repository(a.repo, a.ref, a.workers, a.epochs, a.seed)
    else:
        parser.error('give a repository, or --mounted DIR')
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
