"""Import mfusepy bound to libfuse 3.

mfusepy loads ``libfuse.so.2`` when both libfuse 2 and 3 are installed; hangarfs needs libfuse 3
(READDIRPLUS, ``max_read``, the ``fuse_config`` timeouts). Point mfusepy at libfuse 3 unless the user
chose a library explicitly (``FUSE_LIBRARY_PATH`` or ``FUSE_LIBRARY_NAME``).

Also :func:`translated`, which turns what an operation of the mfusepy adapter raises into an errno.
"""

from __future__ import annotations

import ctypes.util
import errno
import functools
import logging
import os
from collections.abc import Callable
from typing import Any

if 'FUSE_LIBRARY_PATH' not in os.environ and 'FUSE_LIBRARY_NAME' not in os.environ:
    _libfuse3 = ctypes.util.find_library('fuse3')
    if _libfuse3:
        os.environ['FUSE_LIBRARY_PATH'] = _libfuse3

import mfusepy

from hangarfs.errors import HangarfsError
from hangarfs.fs.errnos import errno_for

log = logging.getLogger('hangarfs.mount')

if mfusepy.fuse_version_major != 3:
    raise ImportError(
        f'hangarfs mounts need libfuse 3, but mfusepy loaded libfuse {mfusepy.fuse_version_major}.'
        f'{mfusepy.fuse_version_minor}; install it with `apt-get install -y fuse3 libfuse3-3`'
    )


def translated(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a FUSE operation, turning exceptions into errnos (unexpected ones are logged)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any) -> Any:
        try:
            return method(self, *args)
        except mfusepy.FuseOSError:
            raise
        except HangarfsError as err:
            code = errno_for(err)
            if code == errno.EIO:
                log.error('%s %s: %s', method.__name__, self.path_of_call(args), err)
            raise mfusepy.FuseOSError(code) from err
        except OSError as err:
            log.error('%s %s: %s', method.__name__, self.path_of_call(args), err)
            raise mfusepy.FuseOSError(err.errno or errno.EIO) from err
        except Exception as err:
            log.exception('%s %s failed', method.__name__, self.path_of_call(args))
            raise mfusepy.FuseOSError(errno.EIO) from err

    return wrapper


__all__ = ['mfusepy', 'translated']
