"""StockRoom's costs: one checkout per access versus ``optimize()``, and a model save/load beside torch.save.

    .venv/bin/python scripts/bench/stockroom.py [--n 500] [--params 5000000] [--json out.json]

Prints a table and JSON. Each figure is the best of ``--repeats`` runs in a fresh stock under a
temporary directory; the ratio columns compare the two ways in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hangarfs.stockroom import StockRoom, init_repo


def best(repeats: int, run: Callable[[Path], float]) -> float:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(dir=os.environ.get('BENCH_DIR')) as tmp:
            root = Path(tmp)
            init_repo('bench', 'bench@example.org', path=root)
            times.append(run(root))
    return min(times)


def writes(n: int, optimized: bool) -> Callable[[Path], float]:
    images = np.random.default_rng(0).integers(0, 255, (n, 28, 28), dtype=np.uint8)

    def run(root: Path) -> float:
        stock = StockRoom(root)
        start = time.perf_counter()
        if optimized:
            with stock.optimize():
                for i in range(n):
                    stock.data['images'][i] = images[i]
        else:
            for i in range(n):
                stock.data['images'][i] = images[i]
        return time.perf_counter() - start

    return run


def reads(n: int, optimized: bool) -> Callable[[Path], float]:
    images = np.random.default_rng(0).integers(0, 255, (n, 28, 28), dtype=np.uint8)

    def run(root: Path) -> float:
        stock = StockRoom(root)
        stock.data['images'].update(dict(enumerate(images)))
        stock.commit('images')
        start = time.perf_counter()
        if optimized:
            with stock.optimize():
                for i in range(n):
                    stock.data['images'][i]
        else:
            for i in range(n):
                stock.data['images'][i]
        return time.perf_counter() - start

    return run


def model_state(params: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    width = int((params / 4) ** 0.5)
    return {f'layer{i}.weight': torch.randn(width, width) for i in range(4)} | {
        f'layer{i}.bias': torch.randn(width) for i in range(4)
    }


def model_io(params: int, kind: str) -> Callable[[Path], float]:
    state = model_state(params)

    def run(root: Path) -> float:
        start = time.perf_counter()
        if kind == 'stock':
            stock = StockRoom(root)
            stock.model['net'] = state
            stock.commit('model')
            back = StockRoom(root).model['net']
        else:
            path = root / 'net.pt'
            torch.save(state, path)
            with open(path, 'rb') as fh:
                os.fsync(fh.fileno())  # a commit is durable; make torch.save so too
            back = torch.load(path)
        elapsed = time.perf_counter() - start
        assert all(torch.equal(back[k], v) for k, v in state.items())
        return elapsed

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--n', type=int, default=500)
    parser.add_argument('--params', type=int, default=5_000_000)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--json', type=Path)
    args = parser.parse_args()
    n, r = args.n, args.repeats
    rows = {
        'write, one checkout per access': best(r, writes(n, False)),
        'write, optimize()': best(r, writes(n, True)),
        'read, one checkout per access': best(r, reads(n, False)),
        'read, optimize()': best(r, reads(n, True)),
        f'model save+commit+load ({args.params / 1e6:.0f}M float32), stock': best(
            r, model_io(args.params, 'stock')
        ),
        f'model save+fsync+load ({args.params / 1e6:.0f}M float32), torch.save': best(
            r, model_io(args.params, 'torch')
        ),
    }
    names = list(rows)
    print(f'{"what":<58} {"seconds":>9} {"per item":>12}')
    for name in names:
        per = rows[name] / n * 1e6 if 'model' not in name else rows[name] * 1e3
        unit = 'us/sample' if 'model' not in name else 'ms'
        print(f'{name:<58} {rows[name]:>9.4f} {per:>9.1f} {unit}')
    ratios = {
        'write: per-access / optimize': rows[names[0]] / rows[names[1]],
        'read: per-access / optimize': rows[names[2]] / rows[names[3]],
        'model: stock / torch.save': rows[names[4]] / rows[names[5]],
    }
    for name, value in ratios.items():
        print(f'{name:<58} {value:>9.2f}x')
    report = {'n': n, 'params': args.params, 'repeats': r, 'seconds': rows, 'ratios': ratios}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == '__main__':
    main()
