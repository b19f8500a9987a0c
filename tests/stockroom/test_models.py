"""Model weights stored natively: torch and Keras round trips, exact, for several architectures and dtypes."""

from __future__ import annotations

import json
import os
import warnings
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import torch

from hangarfs import Repository
from hangarfs.errors import FrameworkVersionWarning, InvalidKey, ModelMismatch
from hangarfs.stockroom import StockRoom

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def conv_bn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),  # running stats and an int64 0-d num_batches_tracked
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 4, 1, bias=False),
    )


class Tagger(torch.nn.Module):
    """Embedding + LSTM + LayerNorm + head: biases, 2-layer LSTM weight families."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(50, 16)
        self.lstm = torch.nn.LSTM(16, 12, num_layers=2, batch_first=True)
        self.norm = torch.nn.LayerNorm(12)
        self.head = torch.nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.emb(x))
        return self.head(self.norm(out))


def trained(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Give every parameter and buffer distinct values (incl. BatchNorm statistics)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p.float()).to(p.dtype))
    model.train()
    if any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
        model(torch.randn(2, 3, 5, 5, dtype=next(model.parameters()).dtype))
    return model


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        # bit-exact, NaN payloads included
        assert bits(a[key]) == bits(b[key]), key


def bits(t: torch.Tensor) -> bytes:
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


@pytest.mark.parametrize(
    ('make', 'dtype'),
    [
        (conv_bn, torch.float32),
        (conv_bn, torch.float16),
        (conv_bn, torch.bfloat16),
        (Tagger, torch.float32),
        (Tagger, torch.bfloat16),
        (Tagger, torch.float64),
    ],
)
def test_torch_state_dicts_round_trip_exactly(project: Path, make: type, dtype: torch.dtype) -> None:
    model = trained(make().to(dtype), seed=3)
    state = model.state_dict()
    stock = StockRoom()
    stock.model.save_weights('net', model)
    digest = stock.commit(f'{make.__name__} {dtype}')
    back = StockRoom().model['net']
    assert_same_state(state, back)
    if make is conv_bn:
        assert (
            back['1.num_batches_tracked'].dtype == torch.int64 and back['1.num_batches_tracked'].shape == ()
        )
        assert int(back['1.num_batches_tracked']) == 1
    fresh = make().to(dtype)
    stock.model.load_weights('net', fresh)
    assert_same_state(state, fresh.state_dict())
    info = stock.model.info('net')
    assert info['framework'] == 'torch' and info['framework_version'] == torch.__version__
    by_key = {p['key']: p for p in info['params']}
    first = next(iter(state))
    assert by_key[first]['dtype'] == str(dtype).removeprefix('torch.')
    if dtype == torch.bfloat16:
        assert by_key[first]['stored'] == 'uint16'  # the bit pattern (see frameworks.py)
    # one subsample per parameter, each with its own dtype and shape
    with closing(Repository(project).checkout(commit=digest)) as co:
        assert sorted(co['model']['net'].keys()) == sorted(state)


def test_odd_torch_dtypes_and_tensors_round_trip(project: Path) -> None:
    state = {
        'f8': torch.tensor([0.5, -2.0, 448.0]).to(torch.float8_e4m3fn),
        'f8b': torch.tensor([1.0, 3.0]).to(torch.float8_e5m2),
        'c64': torch.complex(torch.randn(2, 3), torch.randn(2, 3)),
        'c128': torch.complex(torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)),
        'u8': torch.arange(10, dtype=torch.uint8),
        'b': torch.tensor([True, False]),
        'i16': torch.tensor([[-3, 4]], dtype=torch.int16),
        'scalar': torch.tensor(3.25, dtype=torch.bfloat16),
        'empty': torch.zeros(0, 7),
        'transposed': torch.arange(6.0).reshape(2, 3).t(),  # not contiguous
        'nan_payload': torch.tensor([0x7FC1, -0x7F], dtype=torch.int16).view(torch.bfloat16),  # 0xFF81
    }
    stock = StockRoom()
    stock.model['odd'] = state
    stock.commit('odd dtypes')
    back = StockRoom().model['odd']
    assert_same_state(state, back)
    arrays = StockRoom().model.arrays('odd')  # numpy views with the real dtypes (ml_dtypes for bf16)
    assert arrays['c128'].dtype == np.complex128 and arrays['scalar'].dtype.name == 'bfloat16'
    assert float(arrays['scalar']) == 3.25 and arrays['transposed'].tolist() == [[0, 3], [1, 4], [2, 5]]


def test_keras_weight_lists_round_trip_exactly(project: Path) -> None:
    import keras

    def make(dtype: str = 'float32') -> keras.Model:
        return keras.Sequential(
            [
                keras.Input((6, 6, 2)),
                keras.layers.Conv2D(4, 3, dtype=dtype),
                keras.layers.BatchNormalization(dtype=dtype),
                keras.layers.Flatten(dtype=dtype),
                keras.layers.Dense(3, dtype=dtype),
            ]
        )

    for dtype in ('float32', 'bfloat16'):
        model = make(dtype)
        rng = np.random.default_rng(1)
        model.set_weights([rng.standard_normal(w.shape).astype(w.dtype) for w in model.get_weights()])
        weights = model.get_weights()
        stock = StockRoom()
        stock.model['tf_model'] = weights
        stock.model.save_weights(f'keras_{dtype}', model)
        stock.commit(f'keras {dtype}')
        back = StockRoom().model['tf_model']
        assert isinstance(back, list) and len(back) == len(weights)
        for a, b in zip(weights, back):
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        other = make(dtype)
        stock.model.load_weights(f'keras_{dtype}', other)
        for a, b in zip(weights, other.get_weights()):
            assert a.tobytes() == b.tobytes()
        info = stock.model.info(f'keras_{dtype}')
        assert info['framework'] == 'keras' and info['framework_version'] == keras.__version__
        assert info['names'][0].endswith('kernel')


def test_load_weights_names_every_difference_and_loads_nothing(project: Path) -> None:
    stock = StockRoom()
    stock.model.save_weights('net', trained(conv_bn(), 1))
    stock.commit('conv')
    wider = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),  # another shape
        torch.nn.BatchNorm2d(16),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 4, 1, bias=True),  # an extra bias
    )
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(ModelMismatch) as info:
        stock.model.load_weights('net', wider)
    message = str(info.value)
    assert "parameter '0.weight': stored shape (8, 3, 3, 3), model shape (16, 3, 3, 3)" in message
    assert "lack: '3.bias'" in message and 'nothing was loaded' in message
    assert_same_state(before, wider.state_dict())
    half = conv_bn().half()
    with pytest.raises(
        ModelMismatch, match=r"parameter '0\.weight': stored dtype float32, model dtype float16"
    ):
        stock.model.load_weights('net', half)
    import keras

    with pytest.raises(ModelMismatch, match='holds torch weights'):
        stock.model.load_weights('net', keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))


def test_a_framework_version_mismatch_warns(project: Path) -> None:
    stock = StockRoom()
    stock.model['net'] = conv_bn().state_dict()
    stock.commit('model')
    co = stock.get_hangar_checkout(write=True)  # as if saved by an older torch
    manifest = json.loads(co.metadata['stockroom.model.net'])
    co.metadata['stockroom.model.net'] = json.dumps({**manifest, 'framework_version': '1.13.1'})
    co.close()
    stock.commit('the manifest of an older torch')
    with pytest.warns(
        FrameworkVersionWarning, match=r'saved with torch 1\.13\.1; this environment has torch'
    ):
        stock.model['net']
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        stock.model['net'] = conv_bn().state_dict()
        stock.commit('saved again with this torch')
        stock.model['net']  # no warning


@pytest.mark.filterwarnings('ignore:torch.quantize_per_tensor:UserWarning')
def test_bad_models_are_refused_and_nothing_is_stored(project: Path) -> None:
    stock = StockRoom()
    stock.model['net'] = conv_bn().state_dict()
    first = stock.commit('a model')
    with pytest.raises(TypeError, match="parameter '_extra_state' is a dict"):
        stock.model['net'] = {**conv_bn().state_dict(), '_extra_state': {'a': 1}}
    with pytest.raises(InvalidKey, match="parameter 'a b'"):
        stock.model['net'] = {'a b': torch.zeros(2)}
    with pytest.raises(TypeError, match='not a torch tensor while others are'):
        stock.model['net'] = {'w': torch.zeros(2), 'v': np.zeros(2)}
    with pytest.raises(TypeError, match=r'a torch\.nn\.Module or a keras\.Model'):
        stock.model.save_weights('net', object())
    with pytest.raises(TypeError, match='got int'):
        stock.model['net'] = 5
    with pytest.raises(InvalidKey, match='model name'):
        stock.model['my model'] = conv_bn().state_dict()
    with pytest.raises(TypeError, match='quantized'):
        stock.model['q'] = {'w': torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.quint8)}
    with pytest.raises(KeyError, match=r"no model 'nope'.*models: net"):
        stock.model['nope']
    with pytest.raises(Exception, match='nothing staged'):
        stock.commit('nothing changed')
    assert stock.head == first and stock.model.keys() == ['net']


def test_saving_a_model_again_replaces_its_parameters(project: Path) -> None:
    stock = StockRoom()
    stock.model['net'] = {'a': torch.zeros(2), 'b': torch.ones(3)}
    first = stock.commit('two parameters')
    stock.model['net'] = {'a': torch.zeros(2), 'c': torch.full((1,), 2.0)}
    second = stock.commit('b replaced by c')
    assert list(stock.model['net']) == ['a', 'c']
    diff = Repository(project).diff(first, second).columns['model']
    assert diff.added == {('net', 'c')} and diff.deleted == {('net', 'b')} and not diff.mutated
    del stock.model['net']
    stock.commit('no model')
    assert stock.model.keys() == []
