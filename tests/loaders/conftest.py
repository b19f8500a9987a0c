"""Fixtures for the dataloader tests: small real repositories on disk, and tensorflow imported once.

``dataset_repo`` holds, at one commit on master: ``images`` (28, 28) uint8 in the default backend
(hdf5), ``labels`` (1,) int64 and ``ids`` () int64 (each sample's own key, so that a test can tell
which samples a loader read), all under int keys 0..N-1; ``captions`` (str) and ``shapes`` (variable
shape float32) under the same keys; ``partial`` (a column lacking some keys).
"""

from __future__ import annotations

import os
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hangarfs import Repository
from tests.helpers import new_repository

N = 600
MISSING_FROM_PARTIAL = (3, 77, 598)


@dataclass(frozen=True)
class DatasetRepo:
    path: Path
    repo: Repository
    commit: str
    images: np.ndarray
    labels: np.ndarray

    def reader(self, **kwargs: Any) -> Any:
        return self.repo.checkout(**kwargs)


def make_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def variable_sample(key: int) -> np.ndarray:
    return np.full((1 + key % 4, 3), key, dtype=np.float32)


def build(path: Path, n: int = N) -> DatasetRepo:
    repo = new_repository(path)
    images = make_images(n, 0)
    labels = (np.arange(n, dtype=np.int64) % 10).reshape(n, 1)
    keys = list(range(n))
    with closing(repo.checkout(write=True)) as co:
        co.add_ndarray_column('images', shape=(28, 28), dtype=np.uint8).update_batch(keys, images)
        co.add_ndarray_column('labels', shape=(1,), dtype=np.int64).update_batch(keys, labels)
        co.add_ndarray_column('ids', shape=(), dtype=np.int64).update_batch(
            keys, np.arange(n, dtype=np.int64)
        )
        co.add_str_column('captions').update({k: f'sample {k}' for k in keys})
        shapes = co.add_ndarray_column('shapes', shape=(4, 3), dtype=np.float32, variable_shape=True)
        shapes.update({k: variable_sample(k) for k in keys})
        partial = co.add_ndarray_column('partial', shape=(1,), dtype=np.int64)
        partial.update({k: np.array([k]) for k in keys if k not in MISSING_FROM_PARTIAL})
        commit = co.commit('dataset')
    return DatasetRepo(path, repo, commit, images, labels)


@pytest.fixture
def dataset_repo(tmp_path: Path) -> DatasetRepo:
    return build(tmp_path / 'repo')


@pytest.fixture(scope='session')
def tf() -> Any:
    """tensorflow, imported once per test session (the import takes seconds)."""
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    import tensorflow

    return tensorflow
