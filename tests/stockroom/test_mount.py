"""A stock through a real FUSE mount: model/<name>/<param>.npy, the manifest, and commit-level tags."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from hangarfs.stockroom import StockRoom
from tests.fs.conftest import Mounts, fuse_available, is_mounted

pytestmark = pytest.mark.fuse


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    if not fuse_available():
        pytest.fail('FUSE is not available (/dev/fuse or fusermount3 missing); scripts/test installs it')
    m = Mounts(tmp_path / 'mnt')
    try:
        yield m
    finally:
        m.cleanup()
    assert not [p for p in m.points if is_mounted(p)]


def test_a_mount_shows_models_per_parameter_and_the_commit_tags(project: Path, mounts: Mounts) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)).to(torch.bfloat16)
    net[1].float()  # mixed dtypes in one model
    state = net.state_dict()
    stock = StockRoom()
    stock.model['net'] = state
    stock.data['labels'][0] = np.array([3], np.int64)
    stock.tag['epochs'] = 10
    stock.tag['lr'] = 0.001
    stock.tag['optimizer'] = 'adam'
    stock.tag['augment'] = False
    digest = stock.commit('trained')

    mp = mounts.mount(project, '--ref', digest)
    files = sorted(p.name for p in (mp / 'model' / 'net').iterdir())
    assert files == sorted(f'{k}.npy' for k in state)
    bias = np.load(mp / 'model' / 'net' / '1.running_var.npy')
    assert bias.dtype == np.float32 and np.array_equal(bias, state['1.running_var'].numpy())
    tracked = np.load(mp / 'model' / 'net' / '1.num_batches_tracked.npy', mmap_mode='r')
    assert tracked.dtype == np.int64 and tracked.shape == ()
    weight_bits = np.load(mp / 'model' / 'net' / '0.weight.npy')
    assert weight_bits.dtype == np.uint16 and weight_bits.shape == (2, 1, 3, 3)
    assert weight_bits.tobytes() == state['0.weight'].view(torch.int16).numpy().tobytes()
    manifest = json.loads((mp / '.hangarfs' / 'metadata' / 'stockroom.model.net').read_text())
    assert {p['key']: p['dtype'] for p in manifest['params']}['0.weight'] == 'bfloat16'
    commit = json.loads((mp / '.hangarfs' / 'commit.json').read_text())
    assert commit['commit'] == digest
    assert commit['properties'] == {'epochs': 10, 'lr': 0.001, 'optimizer': 'adam', 'augment': False}
    assert np.load(mp / 'labels' / '0.npy').tolist() == [3]
