"""The model shelf: model weights stored natively, one subsample per parameter.

All models live in one nested, heterogeneous ndarray column ``model``: sample ``<name>``, subsample
``<parameter>`` (its own dtype and shape). So a model diff is the ordinary per-sample diff, a merge
merges parameters, identical parameters are stored once, and a mount shows
``model/<name>/<parameter>.npy``. Keras weight lists use the index as the subkey (``model/net/0.npy``).

How to put the arrays back together (framework and its version, dict or list, parameter order, real
dtypes such as bfloat16) is a small JSON manifest in the commit's metadata under
``stockroom.model.<name>`` (``.hangarfs/metadata/stockroom.model.<name>`` in a mount), versioned with
the weights.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from hangarfs.engine.keys import Key, check_name
from hangarfs.errors import CorruptData, InvalidKey, SchemaMismatch
from hangarfs.stockroom.data import MODEL_COLUMN
from hangarfs.stockroom.frameworks import (
    ParamSpec,
    check_fits,
    load_into,
    pack_weights,
    restore_numpy,
    unpack_weights,
    warn_on_version,
    weights_of,
)

if TYPE_CHECKING:
    from hangarfs.engine.checkout import Checkout
    from hangarfs.engine.writer_checkout import WriterCheckout
    from hangarfs.stockroom.core import StockRoom

MANIFEST_PREFIX = 'stockroom.model.'


def _check_model_name(name: object) -> str:
    name = check_name(name, 'model name')
    if len(MANIFEST_PREFIX) + len(name) > 255:
        raise InvalidKey(
            f'model name {name[:20]!r}... is too long: at most {255 - len(MANIFEST_PREFIX)} characters'
        )
    return name


class Model:
    """``stock.model['resnet'] = net.state_dict()`` and ``stock.model['resnet']`` (see the module doc)."""

    def __init__(self, stock: StockRoom) -> None:
        self._stock = stock

    # ------------------------------------------------------------------ reading

    def _manifest(self, co: Checkout | None, name: str) -> dict[str, Any]:
        raw = co.metadata.get(MANIFEST_PREFIX + name) if co is not None else None
        if raw is None:
            known = ', '.join(self._names(co)) or 'none'
            raise KeyError(f'no model {name!r} in the commit head.stock names (models: {known})')
        manifest: dict[str, Any] = json.loads(raw)
        return manifest

    def _arrays(self, co: Checkout, name: str, manifest: dict[str, Any]) -> dict[Key, np.ndarray]:
        if not manifest['params']:
            return {}
        try:
            sample = co.columns[MODEL_COLUMN][name]
            arrays = dict(sample.items())
        except KeyError as err:
            raise CorruptData(
                f'model {name!r}: its manifest lists parameters, but column "model" lacks them'
            ) from err
        missing = [p['key'] for p in manifest['params'] if p['key'] not in arrays]
        if missing:
            raise CorruptData(f'model {name!r}: parameters {missing[:5]} of its manifest are not stored')
        return arrays

    def _names(self, co: Checkout | None) -> list[str]:
        if co is None:
            return []
        n = len(MANIFEST_PREFIX)
        return sorted(k[n:] for k in co.metadata if k.startswith(MANIFEST_PREFIX))

    def __getitem__(self, name: str) -> Any:
        """The weights as saved: an OrderedDict of torch tensors, a list of arrays (Keras) or a dict of
        arrays. Warns (FrameworkVersionWarning) when the installed framework version differs."""
        name = _check_model_name(name)
        with self._stock._reading() as co:
            manifest = self._manifest(co, name)
            assert co is not None
            arrays = self._arrays(co, name, manifest)
        return unpack_weights(manifest, arrays, name)

    def arrays(self, name: str) -> dict[Key, np.ndarray]:
        """The parameters as numpy arrays with their real dtypes, without importing any framework
        (bfloat16 and float8 need the ml_dtypes package)."""
        name = _check_model_name(name)
        with self._stock._reading() as co:
            manifest = self._manifest(co, name)
            assert co is not None
            arrays = self._arrays(co, name, manifest)
        specs = [ParamSpec.from_dict(p) for p in manifest['params']]
        return {s.key: restore_numpy(arrays[s.key], s) for s in specs}

    def info(self, name: str) -> dict[str, Any]:
        """The manifest: framework, its version, layout and every parameter's key, dtype and shape."""
        name = _check_model_name(name)
        with self._stock._reading() as co:
            return self._manifest(co, name)

    def keys(self) -> list[str]:
        with self._stock._reading() as co:
            return self._names(co)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.keys()

    # ------------------------------------------------------------------ writing

    def __setitem__(self, name: str, weights: Any) -> None:
        self._save(name, weights, ())

    def _save(self, name: str, weights: Any, names: tuple[str, ...]) -> None:
        name = _check_model_name(name)
        packed = pack_weights(weights, names)  # every parameter checked before anything is staged
        manifest = json.dumps(packed.manifest(), sort_keys=True)
        with self._stock._writing() as co:
            col = self._column(co)
            with col:
                if name in col:
                    del col[name]
                if packed.arrays:
                    col[name] = packed.arrays
            co.metadata[MANIFEST_PREFIX + name] = manifest

    def _column(self, co: WriterCheckout) -> Any:
        if MODEL_COLUMN not in co.columns:
            # uncompressed, memory-mapped files: trained weights hardly compress, and this backend
            # saves ~2x and loads ~7x faster than blosc-compressed HDF5 (scripts/bench/stockroom.py)
            return co.add_ndarray_column(
                MODEL_COLUMN, contains_subsamples=True, heterogeneous=True, backend='numpy'
            )
        col = co.columns[MODEL_COLUMN]
        if not col.contains_subsamples or col.column_type != 'ndarray' or col.dtype is not None:
            raise SchemaMismatch(
                MODEL_COLUMN,
                'a nested heterogeneous ndarray column, for the model shelf, but it is',
                '',
                f'a {col.column_layout} {col.column_type} column',
                'rename that column: the model shelf needs the name "model"',
            )
        return col

    def __delitem__(self, name: str) -> None:
        name = _check_model_name(name)
        with self._stock._writing() as co:
            if MANIFEST_PREFIX + name not in co.metadata:
                raise KeyError(
                    f'no model {name!r} to delete (models: {", ".join(self._names(co)) or "none"})'
                )
            if MODEL_COLUMN in co.columns and name in co.columns[MODEL_COLUMN]:  # type: ignore[operator]
                del co.columns[MODEL_COLUMN][name]
            del co.metadata[MANIFEST_PREFIX + name]

    def save_weights(self, name: str, model: Any) -> None:
        """Store the weights of a torch ``nn.Module`` (its state_dict) or a Keras model (get_weights)."""
        weights, names = weights_of(model)
        self._save(name, weights, names)

    def load_weights(self, name: str, model: Any) -> None:
        """Put stored weights into ``model`` in place, after checking that every parameter's name, shape
        and dtype match (ModelMismatch lists each difference, and nothing is loaded)."""
        name = _check_model_name(name)
        current, names = weights_of(model)
        target = pack_weights(current, names)
        with self._stock._reading() as co:
            manifest = self._manifest(co, name)
            check_fits(name, manifest, target)
            assert co is not None
            arrays = self._arrays(co, name, manifest)
        if manifest['framework'] == 'numpy' and target.framework != 'numpy':  # plain arrays into a model
            manifest = {**manifest, 'framework': target.framework, 'framework_version': ''}
        load_into(model, unpack_weights(manifest, arrays, name))

    def __repr__(self) -> str:
        return f'<Model shelf: {", ".join(self.keys()) or "no models"}>'


__all__ = ['MANIFEST_PREFIX', 'Model', 'warn_on_version']
