"""Modification times and modes through the staging view (a part of StagingView): ``utimensat`` and
``chmod`` of files and directories, and the time each staged file is recorded to have changed.

The times themselves are kept by ``file_attrs.py`` (and, through it, in the staging area).
"""

from __future__ import annotations

import errno
import logging
import time
from typing import TYPE_CHECKING, Any

from hangarfs.fs.file_attrs import DIRECTORY, FileAttrs
from hangarfs.fs.names import EXTENSIONS, key_to_name
from hangarfs.fs.nodes import Node, split_path
from hangarfs.fs.staging_paths import SAMPLE, SCRATCH, Target, WriteHandle

DATE_SAMPLES_LIMIT = 100_000  # staged entries up to which samples staged elsewhere get their own time
log = logging.getLogger('hangarfs.staging')


class AttributeOps:
    """set_times, set_mode and the dating of staged files, for :class:`StagingView`."""

    co: Any
    lock: Any
    attrs: FileAttrs
    mtime_ns: int
    _columns: Any
    _scratch: dict[str, Any]
    _writing: dict[str, list[WriteHandle]]

    if TYPE_CHECKING:  # provided by StagingView

        def lookup(self, path: str) -> Node | None: ...

        def _column_map(self) -> dict[str, Any]: ...

        def _attr_version(self, parts: list[str], node: Node) -> bytes: ...

        def _base_lookup(self, path: str) -> Node | None: ...

    def _date_staged_samples(self) -> None:
        """Samples staged past this view (through Python or the CLI) have no recorded mtime: they get
        the time now, so that they differ from what they were at the base commit. Beyond
        ``DATE_SAMPLES_LIMIT`` staging entries that costs too much, and every file not written through
        the mount shows the time now instead (it may look changed; it never looks unchanged wrongly)."""
        staging = self.co._staging
        if not staging.is_dirty():
            return
        if staging.entry_count() > DATE_SAMPLES_LIMIT:
            log.info('many samples staged outside the mount: files not written here show the time now')
            self.attrs.default_ns = self.mtime_ns = time.time_ns()
            return
        diff = self.co.diff.staged()
        for name, changes in diff.columns.items():
            col = self._column_map().get(name)
            if col is None:
                continue
            ext = EXTENSIONS[col.column_type]
            for key in changes.added | changes.mutated:
                if isinstance(key, tuple):
                    path = f'/{name}/{key_to_name(key[0])}/{key_to_name(key[1])}{ext}'
                else:
                    path = f'/{name}/{key_to_name(key)}{ext}'
                node = self._base_lookup(path)
                attr = self.attrs.get(path)
                if node is not None and (attr is None or attr.version != node.version):
                    self.attrs.set(path, node.version)
        self.attrs.persist(now=True)

    def date_staged_samples(self) -> None:
        """Give samples staged past this view (``hangarfs import`` through the daemon) a new mtime."""
        with self.lock:
            self._columns = None
            self._date_staged_samples()

    def set_times(self, path: str, mtime_ns: int | None) -> None:
        """``utimensat``: the file (or directory) keeps ``mtime_ns`` (None: now) until it changes."""
        mtime = time.time_ns() if mtime_ns is None else mtime_ns
        with self.lock:
            self._set_attr(path, mtime_ns=mtime)

    def set_mode(self, path: str, mode: int) -> None:
        """``chmod``: the file (or directory) shows ``mode`` (permission bits) from now on."""
        with self.lock:
            self._set_attr(path, mode=mode & 0o7777)

    def _set_attr(self, path: str, *, mtime_ns: int | None = None, mode: int | None = None) -> None:
        handles = self._writing.get(path)
        if handles:  # futimens/fchmod of an open file (cp -p, touch): the staged file keeps them
            for h in handles:
                h.mtime_ns = mtime_ns if mtime_ns is not None else h.mtime_ns
                h.mode = mode if mode is not None else h.mode
            if any(h.dirty for h in handles):
                return  # applied when the written bytes are staged
            stored = self._stored_node(path)
            if stored is None:
                return  # a new file nothing was written to yet
            handles[-1].mtime_ns = handles[-1].mtime_ns or stored.mtime_ns
            version = DIRECTORY if stored.is_dir else self._attr_version(split_path(path), stored)
            self.attrs.set(path, version, mtime_ns=handles[-1].mtime_ns, mode=handles[-1].mode)
            self.attrs.persist(now=True)
            return
        scratch = self._scratch.get(path)
        if scratch is not None:
            scratch.mtime_ns = mtime_ns if mtime_ns is not None else scratch.mtime_ns
            scratch.mode = mode if mode is not None else scratch.mode
            return
        node = self.lookup(path)
        if node is None:
            raise FileNotFoundError(errno.ENOENT, 'no such file or directory', path)
        version = DIRECTORY if node.is_dir else self._attr_version(split_path(path), node)
        self.attrs.set(
            path or '/', version, mtime_ns=mtime_ns if mtime_ns is not None else node.mtime_ns, mode=mode
        )
        self.attrs.persist(now=True)

    def _date(
        self, path: str, target: Target, mtime_ns: int | None, mode: int | None, version: bytes | None = None
    ) -> None:
        """Record when (and with what mode) ``path`` got what it holds now (``version``, if known: a
        sample's digest)."""
        if target.kind == SCRATCH:
            scratch = self._scratch.get(path)
            if scratch is not None:
                scratch.mtime_ns = mtime_ns or time.time_ns()
                scratch.mode = mode
            return
        if version is None or target.kind != SAMPLE:
            node = self.lookup(path) if not self._writing.get(path) else self._stored_node(path)
            if node is None:
                return
            version = self._attr_version(split_path(path), node)
        self.attrs.set(path, version, mtime_ns=mtime_ns, mode=mode, keep_mode=mode is None)

    def _stored_node(self, path: str) -> Node | None:
        """The node of ``path`` as staged, ignoring open handles."""
        handles = self._writing.pop(path, None)
        try:
            return self.lookup(path)
        finally:
            if handles is not None:
                self._writing[path] = handles

    # ---------------------------------------------------------------- staging one target
