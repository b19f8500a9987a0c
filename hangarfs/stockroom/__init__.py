"""StockRoom: data, models and experiment tags next to the code, versioned by hangarfs.

    from hangarfs.stockroom import StockRoom
    stock = StockRoom()                      # the stock root: from the working directory upwards
    stock.data['images'][0] = image          # a hangarfs column
    stock.model['net'] = net.state_dict()    # model/net/<parameter>.npy
    stock.tag['lr'] = 0.0001                 # recorded on the next commit
    stock.commit('trained 10 epochs')        # a hangarfs commit; head.stock (git tracks it) names it

The package lives inside ``hangarfs`` (not as a top-level ``stockroom``) so that installing hangarfs
puts one name on ``sys.path`` and never shadows the PyPI ``stockroom`` package (0.2.2, on Hangar).
"""

from hangarfs.errors import (
    FrameworkVersionWarning,
    ModelMismatch,
    NotPicklable,
    StockBehindBranch,
    StockNotFound,
)
from hangarfs.stockroom.core import StockRoom
from hangarfs.stockroom.init import init_repo
from hangarfs.stockroom.pointer import Pointer

__all__ = [
    'FrameworkVersionWarning',
    'ModelMismatch',
    'NotPicklable',
    'Pointer',
    'StockBehindBranch',
    'StockNotFound',
    'StockRoom',
    'init_repo',
]
