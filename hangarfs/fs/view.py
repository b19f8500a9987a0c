"""The filesystem logic as plain Python, in one import: resolve a path, list a directory, read a range.

Nothing here imports FUSE; the FUSE adapters (``lowlevel.py``, and ``mount.py`` kept for comparison)
translate FUSE requests into these views' methods, so everything a mount does is tested in-process
too. The pieces, one module each:

- ``nodes.py``: :class:`Node`, what a stat or read of one path needs;
- ``source.py``: the interfaces, :class:`MountSource` and :class:`WritableMountSource`;
- ``commit_view.py``: the layout of a checkout as files, and :class:`CommitView` (one commit);
- ``composed.py``: :class:`BranchView`, :class:`AllRefsView`, :class:`InfoView`;
- ``staging_view.py``: :class:`StagingView`, the writable staging area.
"""

from __future__ import annotations

from hangarfs.fs.commit_view import (
    COMMIT_FILE,
    META_DIR,
    METADATA_DIR,
    SCHEMA_FILE,
    CheckoutView,
    CommitView,
    commit_json,
    schema_json,
)
from hangarfs.fs.composed import AllRefsView, BranchView, InfoView
from hangarfs.fs.nodes import DIR, FILE, Node, SampleFile, content_node, dir_node, read_node, split_path
from hangarfs.fs.source import MountSource, WritableMountSource
from hangarfs.fs.staging_paths import Target, WriteHandle, decode_file
from hangarfs.fs.staging_view import StagingView

__all__ = [
    'COMMIT_FILE',
    'DIR',
    'FILE',
    'META_DIR',
    'METADATA_DIR',
    'SCHEMA_FILE',
    'AllRefsView',
    'BranchView',
    'CheckoutView',
    'CommitView',
    'InfoView',
    'MountSource',
    'Node',
    'SampleFile',
    'StagingView',
    'Target',
    'WritableMountSource',
    'WriteHandle',
    'commit_json',
    'content_node',
    'decode_file',
    'dir_node',
    'read_node',
    'schema_json',
    'split_path',
]
