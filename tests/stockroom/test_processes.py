"""Real processes: DataLoader workers get read-only stocks, the CLI shares the writer, crashes free it."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from hangarfs.errors import NotPicklable, ReadOnlyError
from hangarfs.stockroom import StockRoom
from tests.helpers import Children

from .conftest import stock_cli


class ImagesDataset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, stock: StockRoom) -> None:
        self.stock = stock

    def __len__(self) -> int:
        return len(self.stock.data['images'])

    def __getitem__(self, index: int) -> np.ndarray:
        return self.stock.data['images'][index]


def test_a_read_only_stock_goes_to_spawned_dataloader_workers(project: Path) -> None:
    stock = StockRoom()
    with stock.optimize():
        for i in range(12):
            stock.data['images'][i] = np.full((3, 3), i, np.float32)
    stock.commit('images')
    with pytest.raises(NotPicklable, match=r'stock\.reader\(\)'):
        pickle.dumps(stock)
    loader = torch.utils.data.DataLoader(
        ImagesDataset(stock.reader()), batch_size=4, num_workers=2, multiprocessing_context='spawn'
    )
    batches = [b for b in loader]
    assert torch.equal(torch.cat(batches)[:, 0, 0], torch.arange(12, dtype=torch.float32))


def test_a_pickled_reader_keeps_reading_the_commit_it_was_made_at(project: Path) -> None:
    stock = StockRoom()
    stock.data['x'][0] = np.zeros(2)
    first = stock.commit('first')
    copy = pickle.loads(pickle.dumps(stock.reader()))
    stock.data['x'][0] = np.ones(2)
    stock.commit('second')
    assert copy.head == first and copy.data['x'][0].tolist() == [0, 0]
    assert StockRoom(read_only=True).data['x'][0].tolist() == [1, 1]
    with pytest.raises(ReadOnlyError, match='read-only'):
        copy.data['x'][1] = np.zeros(2)
    with pytest.raises(ReadOnlyError):
        copy.tag['a'] = 1


HOLDER = """
import sys
import numpy as np
from hangarfs.stockroom import StockRoom
stock = StockRoom()
mode = sys.argv[1]
if mode == 'optimize':
    with stock.optimize():
        stock.data['x'][0] = np.arange(3)
        stock.tag['from_child'] = 'yes'
        print('holding', flush=True)
        sys.stdin.readline()
    print('released', flush=True)
else:
    stock.data['x'][0] = np.arange(3)
    stock.tag['from_child'] = 'yes'
    print('holding', flush=True)
sys.stdin.readline()
"""


def test_the_cli_commits_what_another_process_wrote_between_its_writes(
    project: Path, children: Children
) -> None:
    """Outside optimize() a process holds the writer only while it writes: the shell commits meanwhile."""
    child = children.start(HOLDER, 'plain', cwd=str(project / 'src'))
    children.expect_line(child, 'holding')
    out = stock_cli(project, 'commit', '-m', 'from the shell')
    digest = out.stdout.strip()
    assert 'from_child' in out.stderr
    stock = StockRoom(project)
    assert stock.head == digest and stock.tag['from_child'] == 'yes'
    assert stock.data['x'][0].tolist() == [0, 1, 2]


def test_inside_optimize_the_cli_is_told_who_holds_the_writer(project: Path, children: Children) -> None:
    child = children.start(HOLDER, 'optimize', cwd=str(project / 'src'))
    children.expect_line(child, 'holding')
    refused = stock_cli(project, 'commit', '-m', 'from the shell', check=False)
    assert refused.returncode == 1
    assert f'pid {child.pid}' in refused.stderr and 'has a writer already' in refused.stderr
    assert child.stdin is not None
    child.stdin.write('\n')
    child.stdin.flush()
    children.expect_line(child, 'released')
    digest = stock_cli(project, 'commit', '-m', 'from the shell').stdout.strip()
    assert StockRoom(project).head == digest


def test_a_killed_writer_leaves_no_lock_and_its_finished_writes(project: Path, children: Children) -> None:
    child = children.start(HOLDER, 'optimize', cwd=str(project / 'src'))
    children.expect_line(child, 'holding')
    children.kill(child)  # SIGKILL inside the optimize block, the writer held
    stock = StockRoom()
    stock.data['x'][1] = np.arange(3) * 2  # the kernel released the lock: no liberate needed
    assert stock.data['x'][0].tolist() == [0, 1, 2]  # written (durable) before the kill
    stock.commit('after the crash')
    listing = stock_cli(project, 'list', '--tag').stdout.splitlines()
    assert listing == ['from_child\t"yes"\tstr']


def test_the_stock_cli(project: Path, tmp_path: Path) -> None:
    stock = StockRoom()
    stock.data['images'][0] = np.zeros((2, 2), np.uint8)
    stock.model['net'] = torch.nn.Linear(2, 1).state_dict()
    stock.tag['lr'] = 0.1
    stock.tag['sgd'] = True
    out = stock_cli(project / 'src', 'commit', '-m', 'first', '-m', 'with details')
    digest = out.stdout.strip()
    assert len(digest) == 64 and 'git add head.stock' in out.stderr
    assert stock.head == digest
    full = stock_cli(project, 'list').stdout
    assert f'branch master, commit {digest[:12]}' in full
    assert '  images\t1 samples\tuint8 (2, 2)' in full
    assert f'  net\ttorch {torch.__version__}\t2 parameters' in full
    assert '  lr\t0.1\tfloat' in full and '  sgd\ttrue\tbool' in full
    assert stock_cli(project, 'list', '--model').stdout.startswith('net\ttorch')
    nothing = stock_cli(project, 'commit', '-m', 'again', check=False)
    assert nothing.returncode == 1 and 'nothing staged' in nothing.stderr
    assert (
        stock_cli(project, 'checkout-branch', 'exp').stdout.strip()
        == f'head.stock: branch exp at {digest[:12]}'
    )
    assert stock.branch == 'exp'

    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    missing = stock_cli(elsewhere, 'list', check=False)
    assert missing.returncode == 1 and 'no stock root' in missing.stderr and 'stock init' in missing.stderr
    fresh = tmp_path / 'fresh'
    fresh.mkdir()
    made = stock_cli(fresh, 'init', '--name', 'Bo', '--email', 'bo@example.org')
    assert 'Created the hangarfs repository' in made.stdout and (fresh / 'head.stock').exists()
    assert (fresh / '.gitignore').read_text().endswith('/.hangarfs/\n')
    log = json.loads(json.dumps(StockRoom(fresh).repository.log(return_contents=True)))
    assert log['order'] == []
