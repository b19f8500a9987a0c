"""Model weights <-> numpy arrays, exactly, for torch state_dicts, Keras weight lists and numpy dicts.

Each parameter becomes one array of its own dtype and shape. A dtype hangarfs stores natively (bool,
ints, uints, float16/32/64) is stored as it is. Any other (``bfloat16``, the ``float8`` kinds,
``complex64``...) is stored as its **bit pattern**: the same bytes viewed as the unsigned int of the same
width (``bfloat16`` -> ``uint16``; wider than 8 bytes, such as ``complex128``: ``uint64`` with an extra
last axis), and the manifest records the real dtype. That is exact by construction (no rounding, NaN
payloads kept), costs no conversion, and a reader of the mounted ``.npy`` gets the real values back with
``arr.view(ml_dtypes.bfloat16)``.

Frameworks are imported only when a value of theirs is seen (never at import time).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hangarfs.engine.keys import Key, normalize_key
from hangarfs.engine.samples import ALLOWED_DTYPES
from hangarfs.errors import FrameworkVersionWarning, InvalidKey, ModelMismatch

_UINT: dict[int, np.dtype] = {1: np.dtype('u1'), 2: np.dtype('u2'), 4: np.dtype('u4'), 8: np.dtype('u8')}
_SIGNED: dict[int, np.dtype] = {
    1: np.dtype('u1'),
    2: np.dtype('i2'),
    4: np.dtype('i4'),
    8: np.dtype('i8'),
}  # torch has these


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its key (a name, or an index in a weight list), real dtype, shape, stored dtype."""

    key: Key
    dtype: str
    shape: tuple[int, ...]
    stored: str

    def to_dict(self) -> dict[str, Any]:
        return {'key': self.key, 'dtype': self.dtype, 'shape': list(self.shape), 'stored': self.stored}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ParamSpec:
        return cls(d['key'], d['dtype'], tuple(int(s) for s in d['shape']), d['stored'])


@dataclass(frozen=True)
class PackedModel:
    """Weights taken apart: how to put them back together (the manifest) and the arrays to store."""

    framework: str  # 'torch', 'keras' or 'numpy'
    framework_version: str
    layout: str  # 'dict' (a state_dict, name -> array) or 'list' (Keras get_weights order)
    params: tuple[ParamSpec, ...]
    arrays: dict[Key, np.ndarray]
    names: tuple[str, ...] = ()  # Keras weight paths, for messages

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            'format': 1,
            'framework': self.framework,
            'framework_version': self.framework_version,
            'layout': self.layout,
            'params': [p.to_dict() for p in self.params],
        }
        if self.names:
            out['names'] = list(self.names)
        return out


# ------------------------------------------------------------------------------------------ taking apart


def _c_order(arr: np.ndarray) -> np.ndarray:
    """``arr`` in C order, keeping 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)."""
    return arr if arr.flags.c_contiguous else arr.copy(order='C')


def _is_torch(value: object) -> bool:
    return type(value).__module__.split('.')[0] == 'torch'


def _version(module: str) -> str:
    loaded = sys.modules.get(module)
    version = getattr(loaded, '__version__', None) if loaded is not None else None
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return ''


def store_form(arr: np.ndarray, what: str) -> tuple[np.ndarray, str]:
    """The array to store for ``arr`` and the name of its real dtype (see the module doc)."""
    if arr.dtype.hasobject or arr.dtype.fields is not None or arr.dtype.subdtype is not None:
        raise TypeError(f'{what} has dtype {arr.dtype}: model weights are arrays of numbers or bools')
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder('='))
    arr = _c_order(arr)
    name = arr.dtype.name
    if arr.dtype in ALLOWED_DTYPES:
        return arr, name
    size = arr.dtype.itemsize
    if size in _UINT:
        return arr.view(_UINT[size]), name
    if size % 8 == 0:
        return arr.reshape(-1).view(_UINT[8]).reshape((*arr.shape, size // 8)), name
    raise TypeError(f'{what} has dtype {arr.dtype} ({size} bytes per item), which cannot be stored')


def _torch_array(tensor: Any, what: str) -> tuple[np.ndarray, str]:
    import torch

    if tensor.layout != torch.strided:
        raise TypeError(f'{what} is a {tensor.layout} tensor; convert it with .to_dense() first')
    if tensor.is_quantized:
        raise TypeError(f'{what} is a quantized tensor; store tensor.dequantize() or its int_repr()')
    if tensor.device.type == 'meta':
        raise TypeError(f'{what} is on the meta device and holds no values')
    t = tensor.detach().cpu().contiguous()
    name = str(t.dtype).removeprefix('torch.')
    try:
        arr = t.numpy()
    except TypeError:  # bfloat16, float8...: numpy has no such dtype, so take the bits
        size = t.element_size()
        if size not in _SIGNED:
            raise TypeError(f'{what} has dtype {t.dtype}, which cannot be stored') from None
        bits_dtype = getattr(torch, {1: 'uint8', 2: 'int16', 4: 'int32', 8: 'int64'}[size])
        return t.view(bits_dtype).numpy().view(_UINT[size]), name
    stored, _ = store_form(arr, what)
    return stored, name


def _check_key(key: object, what: str) -> Key:
    try:
        return normalize_key(key)
    except InvalidKey as err:
        raise InvalidKey(f'{what}: {err} (parameter names become keys and file names)') from err


def pack_weights(weights: Any, names: Sequence[str] = ()) -> PackedModel:
    """Take a torch state_dict, a list of arrays (Keras ``get_weights()``) or a dict of numpy arrays
    apart into arrays to store; raises TypeError or InvalidKey (naming the parameter) on bad input."""
    if isinstance(weights, Mapping):
        items: list[tuple[Key, Any]] = [(_check_key(k, f'parameter {k!r}'), v) for k, v in weights.items()]
        layout = 'dict'
    elif isinstance(weights, (list, tuple)):
        items = list(enumerate(weights))
        layout = 'list'
    else:
        raise TypeError(
            f'model weights are a torch state_dict, a list of arrays (keras model.get_weights()) or a dict '
            f'of numpy arrays, got {type(weights).__name__}; for a model object use '
            'stock.model.save_weights(name, model)'
        )
    for key, value in items:
        if not (_is_torch(value) or isinstance(value, (np.ndarray, np.number, np.bool_))):
            raise TypeError(
                f'parameter {key!r} is a {type(value).__name__}; model weights are torch tensors or numpy '
                'arrays (store other state elsewhere, e.g. as a tag or in stock.data)'
            )
    torch_values = [_is_torch(v) for _, v in items]
    if any(torch_values) and not all(torch_values):
        bad = next(k for (k, _), t in zip(items, torch_values) if not t)
        raise TypeError(f'parameter {bad!r} is not a torch tensor while others are: mix no frameworks')
    specs, arrays = [], {}
    for key, value in items:
        what = f'parameter {key!r}'
        if _is_torch(value):
            stored, name = _torch_array(value, what)
        else:
            stored, name = store_form(np.asarray(value), what)
        specs.append(ParamSpec(key, name, tuple(int(s) for s in np.shape(value)), stored.dtype.name))
        arrays[key] = stored
    if items and all(torch_values):
        framework = 'torch'
    elif layout == 'list' and ('keras' in sys.modules or 'tensorflow' in sys.modules):
        framework = 'keras'
    else:
        framework = 'numpy'
    version = _version(framework) if framework != 'numpy' else np.__version__
    return PackedModel(framework, version, layout, tuple(specs), arrays, tuple(names))


def weights_of(model: Any) -> tuple[Any, tuple[str, ...]]:
    """The weights of a model object (torch ``nn.Module`` or Keras ``Model``) and Keras weight names."""
    if hasattr(model, 'state_dict') and hasattr(model, 'load_state_dict'):
        return model.state_dict(), ()
    if hasattr(model, 'get_weights') and hasattr(model, 'set_weights'):
        names = tuple(str(getattr(w, 'path', None) or getattr(w, 'name', '')) for w in model.weights)
        return model.get_weights(), names
    raise TypeError(
        f'save_weights and load_weights take a torch.nn.Module or a keras.Model, got {type(model).__name__}'
    )


# ------------------------------------------------------------------------------------------ putting back


def numpy_dtype(name: str) -> np.dtype:
    """A numpy dtype by name, including ml_dtypes' (bfloat16, float8_*) when that package is installed."""
    try:
        return np.dtype(name)
    except TypeError:
        pass
    try:
        ml_dtypes = importlib.import_module('ml_dtypes')
    except ImportError as err:
        raise TypeError(
            f'dtype {name} needs the ml_dtypes package to be a numpy array (pip install ml_dtypes); '
            'stock.model.arrays(name) gives its bits as stored'
        ) from err
    dtype: np.dtype[Any] = np.dtype(getattr(ml_dtypes, name))
    return dtype


def restore_numpy(stored: np.ndarray, spec: ParamSpec) -> np.ndarray:
    """The array with its real dtype back (a view of the stored bits where they differ)."""
    if stored.dtype.name == spec.dtype:
        return stored
    real = numpy_dtype(spec.dtype)
    return _c_order(stored).reshape(-1).view(real).reshape(spec.shape)


def restore_torch(stored: np.ndarray, spec: ParamSpec) -> Any:
    import torch

    if stored.dtype.name == spec.dtype:
        return torch.from_numpy(stored)
    real = getattr(torch, spec.dtype, None)
    if not isinstance(real, torch.dtype):
        raise TypeError(f'parameter {spec.key!r}: this torch has no dtype {spec.dtype}')
    if stored.dtype.itemsize == real.itemsize:  # same-width bits: view them as the real dtype
        return torch.from_numpy(_c_order(stored).view(_SIGNED[stored.dtype.itemsize])).view(real)
    return torch.from_numpy(restore_numpy(stored, spec))


def unpack_weights(manifest: Mapping[str, Any], arrays: Mapping[Key, np.ndarray], name: str) -> Any:
    """Weights as they were saved: an OrderedDict of tensors (torch), a list or a dict of arrays."""
    specs = [ParamSpec.from_dict(p) for p in manifest['params']]
    framework = manifest['framework']
    warn_on_version(framework, manifest.get('framework_version', ''), name)
    restore = restore_torch if framework == 'torch' else restore_numpy
    values = [(s.key, restore(arrays[s.key], s)) for s in specs]
    if manifest['layout'] == 'list':
        return [v for _, v in values]
    return OrderedDict(values)


def warn_on_version(framework: str, saved: str, name: str) -> None:
    if framework == 'numpy' or not saved:
        return
    installed = _version(framework)
    if installed and installed != saved:
        warnings.warn(
            f'model {name!r} was saved with {framework} {saved}; this environment has {framework} '
            f'{installed}. The weights load as saved; check that the model code still matches.',
            FrameworkVersionWarning,
            stacklevel=4,
        )


# ------------------------------------------------------------------------------------------ checking


def _describe(spec: ParamSpec, names: Sequence[str]) -> str:
    if isinstance(spec.key, int) and spec.key < len(names) and names[spec.key]:
        return f'{spec.key} ({names[spec.key]})'
    return repr(spec.key)


def check_fits(name: str, manifest: Mapping[str, Any], target: PackedModel) -> None:
    """Raise ModelMismatch naming every parameter whose name, shape or dtype differs from ``target``."""
    stored = {p['key']: ParamSpec.from_dict(p) for p in manifest['params']}
    wanted = {p.key: p for p in target.params}
    names = list(manifest.get('names') or target.names)
    problems = []
    if manifest['framework'] != target.framework and 'numpy' not in (manifest['framework'], target.framework):
        problems.append(
            f'it holds {manifest["framework"]} weights and the model is a {target.framework} model'
        )
    missing = [k for k in wanted if k not in stored]
    unexpected = [k for k in stored if k not in wanted]
    if missing:
        problems.append(f'the model has parameters the stored weights lack: {_short(missing)}')
    if unexpected:
        problems.append(f'the stored weights have parameters the model lacks: {_short(unexpected)}')
    for key, want in wanted.items():
        have = stored.get(key)
        if have is None:
            continue
        if have.shape != want.shape:
            problems.append(
                f'parameter {_describe(want, names)}: stored shape {have.shape}, model shape {want.shape}'
            )
        if have.dtype != want.dtype:
            problems.append(
                f'parameter {_describe(want, names)}: stored dtype {have.dtype}, model dtype {want.dtype}'
            )
    if problems:
        shown = problems[:12] + ([f'... and {len(problems) - 12} more'] if len(problems) > 12 else [])
        raise ModelMismatch(
            f'model {name!r} does not fit the model object, so nothing was loaded:\n  - '
            + '\n  - '.join(shown)
            + f'\nRead the stored weights with stock.model[{name!r}] to convert them yourself.'
        )


def _short(keys: Sequence[Key]) -> str:
    shown = ', '.join(repr(k) for k in keys[:8])
    return shown + (f' (and {len(keys) - 8} more)' if len(keys) > 8 else '')


def load_into(model: Any, weights: Any) -> None:
    """Put weights (already checked to fit) into a torch or Keras model, in place."""
    if hasattr(model, 'load_state_dict'):
        model.load_state_dict(weights, strict=True)
    else:
        model.set_weights(list(weights) if not isinstance(weights, Mapping) else list(weights.values()))
