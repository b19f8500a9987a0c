"""Repositories for the remote tests: one with every kind of column, and how to compare two.

Light (no pytest, no moto), so that child processes can import it too.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from hangarfs import Repository
from tests.helpers import checkout_contents, new_repository


def array(dtype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype.startswith('float'):
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(0, 200, shape).astype(dtype)


def build_rich(path: Path, n: int = 40) -> Repository:
    """Two commits on master (the second changes a few samples, removes one, adds a column), a
    branch, tags and commit properties; every column kind and layout, metadata."""
    repo = new_repository(path)
    with closing(repo.checkout(write=True)) as co:
        images = co.add_ndarray_column('images', shape=(8, 8), dtype=np.uint8)
        labels = co.add_ndarray_column('labels', shape=(), dtype=np.int64)
        volumes = co.add_ndarray_column('volumes', shape=(16, 16, 4), dtype=np.float32, variable_shape=True)
        captions = co.add_str_column('captions')
        blobs = co.add_bytes_column('blobs')
        scans = co.add_ndarray_column('scans', shape=(4, 4), dtype=np.uint16, contains_subsamples=True)
        with images, labels, volumes, captions, blobs, scans:
            for i in range(n):
                images[i] = array('uint8', (8, 8), i)
                labels[i] = np.array(i % 10)
                captions[f'c{i}'] = f'caption {i} ✓'
                blobs[i] = bytes(range(i % 256)) * 3
            volumes['big'] = array('float32', (16, 16, 4), 1000)
            volumes['small'] = array('float32', (2, 3, 1), 1001)
            volumes['empty'] = np.zeros((0, 4, 4), np.float32)
            scans['patient1'] = {'axial': array('uint16', (4, 4), 1), 'coronal': array('uint16', (4, 4), 2)}
            scans[7] = {0: array('uint16', (4, 4), 3)}
        co.metadata['source'] = 'remote tests'
        co.commit('first', properties={'lr': 0.01, 'epochs': 3})
    repo.create_tag('v1', message='first release')
    with closing(repo.checkout(write=True)) as co:
        co['images'][0] = array('uint8', (8, 8), 5000)
        del co['images'][1]
        co['captions']['new'] = 'added later'
        co['scans']['patient1', 'sagittal'] = array('uint16', (4, 4), 4)
        co.add_ndarray_column('embeddings', shape=(32,), dtype=np.float16).update(
            {i: array('float16', (32,), 7000 + i) for i in range(5)}
        )
        co.metadata['note'] = 'second'
        co.commit('second')
    repo.create_branch('relabel')
    with closing(repo.checkout(write=True, branch='relabel')) as co:
        co['labels'][3] = np.array(99)
        co.commit('relabel 3')
    repo.create_tag('v2', commit='master')
    return repo


def contents(repo: Repository, ref: str) -> dict[str, Any]:
    """Everything a commit shows (schemas, keys, samples, metadata) and its record."""
    commit = repo.store.refs.resolve(ref).commit
    with closing(repo.checkout(commit=commit)) as co:
        out = checkout_contents(co)
        out['properties'] = co.commit_properties
    rec = repo.store.objects.commit(commit)
    out['record'] = (rec.parents, rec.message, rec.author, rec.time_ns)
    return out


def all_contents(repo: Repository, branches: dict[str, str]) -> dict[str, Any]:
    """``contents`` of every commit of the history of ``branches`` (name in repo -> name to report)."""
    from hangarfs.engine.history import iter_ancestors

    heads = [repo.store.refs.branch_head(b) or '' for b in branches]
    return {c: contents(repo, c) for c in iter_ancestors(repo.store.refs.parents, heads)}
