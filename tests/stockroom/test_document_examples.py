"""Every example of the Stockroom API document, run as it is written (doctest), then checked.

The examples are copied from the document character for character. Three lines of the model example
are not valid in any version of the frameworks (``torch.Sequential(...)`` with a literal ellipsis,
``tf.Keras``, ``tf.layers``); they are the document's placeholders for "your model". The test swaps in
the real names (FRAMEWORK_FIXES, each applied exactly once) and leaves every line that touches the
stock unchanged. The document's data examples read ``sample5`` and column ``coloumn1``, which they never
write; the test writes those first, as a user's earlier code would have.
"""

from __future__ import annotations

import doctest
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hangarfs.stockroom import StockRoom, init_repo

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

DATA_EXAMPLE = """
>>> stock = StockRoom()
>>> stock.data['column1']['sample1'] = np.arange(20).reshape(5, 4)
>>> sample = stock.data['column1']['sample5']
"""

DATA_OPTIMIZE_EXAMPLE = """
>>> with stock.optimize():
...     sample = stock.data['coloumn1']['sample1']
"""

MODEL_EXAMPLE = """
>>> import torch
>>> import tensorflow as tf
>>> torch_model = torch.Sequential(...)
>>> stock.model['torch_model'] = torch_model.state_dict()
>>> tf_model = tf.Keras.Sequential()
>>> tf_model.add(tf.layers.Dense(64, activation='relu'))
>>> stock.model['tf_model'] = tf_model.get_weights()
"""

LOAD_WEIGHTS_EXAMPLE = """
>>> stock.model.load_weights('torch_model', torch_model)
"""

SAVE_WEIGHTS_EXAMPLE = """
>>> stock.model.save_weights('torch_model', torch_model)
"""

TAG_EXAMPLE = """
>>> stock.tag['epochs'] = 1000
>>> stock.tag['lr'] = 0.0001
>>> stock.tag['optimizer'] = 'adam'
"""

FRAMEWORK_FIXES = {
    'torch.Sequential(...)': 'torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))',
    'tf.Keras.Sequential()': 'tf.keras.Sequential()',
    'tf.layers.Dense': 'tf.keras.layers.Dense',
}


def run_example(text: str, globs: dict[str, Any], name: str) -> None:
    """Run a doctest example in ``globs`` (shared between examples, as one session); fail on any error."""
    test = doctest.DocTestParser().get_doctest(text, globs, name, None, 0)
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test, out=out.write, clear_globs=False)
    assert result.failed == 0, f'example {name} failed:\n{out.getvalue()}'
    globs.update(test.globs)  # a DocTest runs in a copy of the namespace it is given


def with_framework_fixes(text: str) -> str:
    fixed = text
    for wrong, right in FRAMEWORK_FIXES.items():
        assert fixed.count(wrong) == 1, wrong
        fixed = fixed.replace(wrong, right)
    stock_lines = [line for line in text.splitlines() if 'stock' in line]
    assert stock_lines == [line for line in fixed.splitlines() if 'stock' in line]  # untouched
    return fixed


def test_every_example_of_the_document_runs(project: Path) -> None:
    globs: dict[str, Any] = {'StockRoom': StockRoom, 'np': np}
    # what the document's data examples read but never write
    setup = StockRoom()
    setup.data['column1']['sample5'] = np.ones((5, 4), dtype=np.int64)
    setup.data['coloumn1']['sample1'] = np.full((2, 2), 7.5)

    run_example(DATA_EXAMPLE, globs, 'Data')
    assert np.array_equal(globs['sample'], np.ones((5, 4)))
    run_example(DATA_OPTIMIZE_EXAMPLE, globs, 'Data (optimize)')
    assert np.array_equal(globs['sample'], np.full((2, 2), 7.5))

    run_example(with_framework_fixes(MODEL_EXAMPLE), globs, 'Model')
    run_example(LOAD_WEIGHTS_EXAMPLE, globs, 'Model.load_weights')
    run_example(SAVE_WEIGHTS_EXAMPLE, globs, 'Model.save_weights')
    run_example(TAG_EXAMPLE, globs, 'Tag')

    stock: StockRoom = globs['stock']
    digest = stock.commit('the document, example by example')
    assert (project / 'head.stock').read_text().count(digest) == 1

    # what the examples stored, read back by a new StockRoom from the commit head.stock names
    again = StockRoom()
    assert np.array_equal(again.data['column1']['sample1'], np.arange(20).reshape(5, 4))
    torch_model = globs['torch_model']
    stored = again.model['torch_model']
    assert list(stored) == list(torch_model.state_dict())
    for key, value in torch_model.state_dict().items():
        assert stored[key].dtype == value.dtype and torch.equal(stored[key], value), key
    assert again.model['tf_model'] == []  # an unbuilt Keras model has no weights yet
    assert again.model.info('tf_model')['framework'] == 'keras'
    tags = dict(again.tag)
    assert tags == {'epochs': 1000, 'lr': 0.0001, 'optimizer': 'adam'}
    assert [type(tags[k]) for k in ('epochs', 'lr', 'optimizer')] == [int, float, str]

    co = again.get_hangar_checkout(write=False)
    try:
        assert co.commit_hash == digest and co.commit_properties == tags
        assert co['column1']['sample5'].tolist() == np.ones((5, 4)).tolist()
    finally:
        co.close()


def test_the_issue_walkthrough_runs(project: Path) -> None:
    """The user story of issue 12, line by line."""
    import tensorflow as tf

    xs = [np.full((4, 4), i, dtype=np.uint8) for i in range(50)]
    torch_model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    model2 = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    tf_model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])

    stock = StockRoom()
    stock.data['column1']['sample1'] = np.arange(20).reshape(5, 4)
    sample = stock.data['column1']['sample1']
    with stock.optimize():
        for i, x in enumerate(xs):
            stock.data['images'][i] = x
    stock.model['torch_model'] = torch_model.state_dict()
    stock.model.save_weights('torch_model', torch_model)
    stock.model.load_weights('torch_model', model2)
    stock.model['tf_model'] = tf_model.get_weights()
    stock.tag['epochs'] = 1000
    stock.tag['lr'] = 0.0001
    stock.tag['optimizer'] = 'adam'
    digest = stock.commit('trained 10 epochs')
    co = stock.get_hangar_checkout(write=False)

    try:
        assert np.array_equal(sample, np.arange(20).reshape(5, 4))
        assert len(co['images']) == 50 and np.array_equal(co['images'][49], xs[49])
        assert co.commit_hash == digest == stock.head
        assert co.commit_properties == {'epochs': 1000, 'lr': 0.0001, 'optimizer': 'adam'}
    finally:
        co.close()
    for a, b in zip(torch_model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
    weights = stock.model['tf_model']
    assert len(weights) == 2 and all(np.array_equal(a, b) for a, b in zip(weights, tf_model.get_weights()))


def test_initialization_without_git_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'init hangar repo, create stock file and add details to .gitignore', in a directory without git."""
    monkeypatch.chdir(tmp_path)
    result = init_repo('Ada', 'ada@example.org')
    assert result.created_repository and result.created_pointer and result.added_gitignore
    assert '/.hangarfs/' in (tmp_path / '.gitignore').read_text().splitlines()
    stock = StockRoom()
    stock.data['column1']['sample1'] = np.arange(3)
    stock.commit('no git here')
    again = init_repo()  # a second init keeps everything (no name needed: the repository exists)
    assert not (again.created_repository or again.created_pointer or again.added_gitignore)
    assert StockRoom().data['column1']['sample1'].tolist() == [0, 1, 2]
