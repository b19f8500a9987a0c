"""The checkout classes under the module name Hangar documents them in (``hangar.checkout``).

``from hangarfs.checkout import WriterCheckout`` works as ``from hangar.checkout import WriterCheckout``
does, for type annotations; checkouts themselves come from ``Repository.checkout``.
"""

from hangarfs.engine.checkout import Checkout, ReaderCheckout
from hangarfs.engine.writer_checkout import WriterCheckout

__all__ = ['Checkout', 'ReaderCheckout', 'WriterCheckout']
