"""Commit-level tags with their types, and the data shelf (bad input: a clear error, nothing stored)."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import torch

from hangarfs import Repository
from hangarfs.errors import ColumnNotFound, InvalidKey, InvalidProperty, SampleNotFound, SchemaMismatch
from hangarfs.stockroom import StockRoom

TAGS = {'epochs': 1000, 'lr': 0.0001, 'optimizer': 'adam', 'early_stopping': True, 'loss': 1.0, 'step': -3}


def test_tags_belong_to_the_commit_and_keep_their_types(project: Path) -> None:
    stock = StockRoom()
    stock.data['x'][0] = np.zeros(3)
    for key, value in TAGS.items():
        stock.tag[key] = value
    stock.tag['accuracy'] = np.float32(0.75)  # numpy scalars become Python values of the same kind
    stock.tag['count'] = np.int64(12)
    assert stock.tag.pending() == {**TAGS, 'accuracy': 0.75, 'count': 12} and stock.tag.committed() == {}
    first = stock.commit('trained')
    assert stock.tag.pending() == {}
    got = dict(stock.tag)
    assert got == {**TAGS, 'accuracy': 0.75, 'count': 12}
    assert {k: type(v) for k, v in got.items()} == {
        **{k: type(v) for k, v in TAGS.items()},
        'accuracy': float,
        'count': int,
    }

    # the next commit starts without tags: they are not versioned data
    stock.data['x'][1] = np.ones(3)
    stock.tag['lr'] = 0.5
    assert stock.tag['lr'] == 0.5 and stock.tag['epochs'] == 1000  # the next commit's over this one's
    second = stock.commit('more data')
    assert dict(stock.tag) == {'lr': 0.5}
    with pytest.raises(KeyError, match="no tag 'epochs'"):
        stock.tag['epochs']

    # readable from any later checkout of the first commit, and in the log
    repo = Repository(project)
    with closing(repo.checkout(commit=first)) as co:
        assert co.commit_properties == got
    with closing(repo.checkout(commit=second)) as co:
        assert co.commit_properties == {'lr': 0.5}
    log = repo.log(return_contents=True)
    assert log is not None and log['properties'][first] == got


def test_a_commit_of_tags_alone_records_metrics_after_training(project: Path) -> None:
    stock = StockRoom()
    stock.data['x'][0] = np.zeros(3)
    data_commit = stock.commit('data')
    stock.tag['val_accuracy'] = 0.91
    metrics = stock.commit('metrics of the run on that data')
    assert metrics != data_commit and stock.tag['val_accuracy'] == 0.91
    assert not Repository(project).diff(data_commit, metrics)


@pytest.mark.parametrize(
    ('key', 'value', 'error', 'needle'),
    [
        ('lr', [0.1], InvalidProperty, 'has type list'),
        ('lr', None, InvalidProperty, 'has type NoneType'),
        ('lr', {'a': 1}, InvalidProperty, 'has type dict'),
        ('lr', np.zeros(2), InvalidProperty, 'has type ndarray'),
        ('lr', torch.tensor(0.1), InvalidProperty, 'has type Tensor'),
        ('lr', float('nan'), InvalidProperty, 'finite numbers'),
        ('val/acc', 0.5, InvalidProperty, 'characters outside'),
    ],
)
def test_bad_tags_are_refused_and_nothing_is_stored(
    project: Path, key: str, value: object, error: type, needle: str
) -> None:
    stock = StockRoom()
    stock.tag['fine'] = 1
    with pytest.raises(error, match=needle):
        stock.tag[key] = value
    assert stock.tag.pending() == {'fine': 1}
    with pytest.raises(InvalidProperty):
        stock.tag.update_tags({'ok': 2, 'bad': object()})  # all or nothing
    assert stock.tag.pending() == {'fine': 1}


def test_committed_tags_cannot_be_deleted_pending_ones_can(project: Path) -> None:
    stock = StockRoom()
    stock.tag['a'] = 1
    stock.tag['b'] = 2
    del stock.tag['b']
    stock.commit('with a')
    with pytest.raises(InvalidProperty, match='cannot change'):
        del stock.tag['a']
    with pytest.raises(KeyError):
        del stock.tag['zzz']


def test_data_writes_create_columns_and_read_back(project: Path) -> None:
    stock = StockRoom()
    stock.data['images'][0] = np.zeros((4, 4), np.uint8)
    stock.data['images', 1] = np.ones((4, 4), np.uint8)  # the tuple form of the original Stockroom
    stock.data['captions']['a'] = 'a cat'
    stock.data['blobs'][0] = b'\x00\x01'
    stock.data['tensors'][0] = torch.arange(3, dtype=torch.int32)  # tensors become numpy arrays
    assert stock.data['images'][1].tolist() == np.ones((4, 4)).tolist()  # staged, read back before commit
    assert sorted(stock.data.keys()) == ['blobs', 'captions', 'images', 'tensors']
    stock.commit('data')
    assert len(stock.data['images']) == 2 and 0 in stock.data['images'] and 5 not in stock.data['images']
    assert stock.data['captions']['a'] == 'a cat' and stock.data['blobs'][0] == b'\x00\x01'
    assert stock.data['tensors'][0].dtype == np.int32
    assert stock.data['images'].keys() == [0, 1]
    variable = stock.data.add_column('crops', shape=(8, 8), dtype=np.float32, variable_shape=True)
    variable[0] = np.zeros((3, 5), np.float32)
    variable[1] = np.zeros((8, 2), np.float32)
    stock.commit('crops')
    assert stock.data['crops'][1].shape == (8, 2)


def test_bad_data_is_refused_and_nothing_is_stored(project: Path) -> None:
    stock = StockRoom()
    stock.data['images'][0] = np.zeros((4, 4), np.uint8)
    first = stock.commit('one image')
    with pytest.raises(TypeError, match=r'data values are numpy arrays.*got list'):
        stock.data['images'][1] = [[1, 2], [3, 4]]
    with pytest.raises(TypeError, match='got dict'):
        stock.data['new_column'][0] = {'a': 1}
    with pytest.raises(SchemaMismatch, match=r'expected shape \(4, 4\), got \(5, 5\)'):
        stock.data['images'][1] = np.zeros((5, 5), np.uint8)
    with pytest.raises(SchemaMismatch, match='dtype'):
        stock.data['images'].update({2: np.zeros((4, 4), np.uint8), 3: np.zeros((4, 4), np.float32)})
    with pytest.raises(SchemaMismatch, match='add_column'):
        stock.data['mixed'].update({0: np.zeros(2), 1: np.zeros(3)})
    with pytest.raises(InvalidKey, match='model shelf'):
        stock.data['model'][0] = np.zeros(2)
    with pytest.raises(InvalidKey, match='characters outside'):
        stock.data['bad name'][0] = np.zeros(2)
    with pytest.raises(InvalidKey, match='bool'):
        stock.data['images'][True] = np.zeros((4, 4), np.uint8)
    with pytest.raises(ColumnNotFound, match='nope'):
        stock.data['nope'][0]
    with pytest.raises(SampleNotFound):
        stock.data['images'][99]
    with pytest.raises(Exception, match='nothing staged'):  # nothing of the above was staged
        stock.commit('nothing')
    assert stock.head == first and stock.data.keys() == ['images'] and len(stock.data['images']) == 1


def test_optimize_keeps_one_checkout_and_commit_uses_its_writer(project: Path) -> None:
    stock = StockRoom()
    with stock.optimize():
        for i in range(20):
            stock.data['images'][i] = np.full((2, 2), i, np.int16)
        assert stock.data['images'][19][0, 0] == 19  # reads see the block's writes
        writer = stock.get_hangar_checkout(write=True)
        assert writer is stock._opt_writer  # one writer for the block, shared
        stock.tag['n'] = 20
        digest = stock.commit('inside optimize')  # the same writer commits
        stock.data['images'][20] = np.zeros((2, 2), np.int16)
        assert len(stock.data['images']) == 21
        assert stock.get_hangar_checkout(write=True) is writer and not writer._closed
    assert writer._closed  # closed (and every write durable) when the block ends
    assert stock.head == digest and stock.tag['n'] == 20
    assert len(stock.data['images']) == 21  # the last write is staged on top of head.stock's commit
    stock.commit('the 21st')
    assert len(StockRoom().data['images']) == 21
