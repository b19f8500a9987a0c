"""Import mfusepy bound to libfuse 3.

mfusepy loads ``libfuse.so.2`` when both libfuse 2 and 3 are installed; hangarfs needs libfuse 3
(READDIRPLUS, ``max_read``, the ``fuse_config`` timeouts). Point mfusepy at libfuse 3 unless the user
chose a library explicitly (``FUSE_LIBRARY_PATH`` or ``FUSE_LIBRARY_NAME``).
"""

from __future__ import annotations

import ctypes.util
import os

if 'FUSE_LIBRARY_PATH' not in os.environ and 'FUSE_LIBRARY_NAME' not in os.environ:
    _libfuse3 = ctypes.util.find_library('fuse3')
    if _libfuse3:
        os.environ['FUSE_LIBRARY_PATH'] = _libfuse3

import mfusepy

if mfusepy.fuse_version_major != 3:
    raise ImportError(
        f'hangarfs mounts need libfuse 3, but mfusepy loaded libfuse {mfusepy.fuse_version_major}.'
        f'{mfusepy.fuse_version_minor}; install it with `apt-get install -y fuse3 libfuse3-3`'
    )

__all__ = ['mfusepy']
