"""The interfaces a FUSE adapter serves: :class:`MountSource` (read) and :class:`WritableMountSource`.

The shape follows ratarmount's ``MountSource``: ``lookup(path) -> Node | None``, listings, ranged
reads, ``is_immutable()``; nothing here imports FUSE. Paths are absolute within the view (``/a/b``).
A listing comes in two forms, so that no method returns different things by a flag:

- :meth:`MountSource.list_names` streams ``(name, is_dir)``: the fast path for directories of
  millions of entries, with no attributes;
- :meth:`MountSource.list_nodes` streams ``(name, node)``: each entry with its attributes (READDIRPLUS).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any

from hangarfs.fs.nodes import DIR_HINT, Node, read_node

Names = Iterator[tuple[str, bool]]
Nodes = Iterator[tuple[str, Node]]


class MountSource(abc.ABC):
    """What a read-only mount serves."""

    @abc.abstractmethod
    def lookup(self, path: str) -> Node | None:
        """The node at ``path``, or None if there is none."""

    @abc.abstractmethod
    def list_names(self, path: str) -> Names | None:
        """The entries of directory ``path`` as ``(name, is_dir)``, streamed; None if not a directory."""

    @abc.abstractmethod
    def list_nodes(self, path: str) -> Nodes | None:
        """The entries of directory ``path`` with their nodes, streamed; None if not a directory."""

    @abc.abstractmethod
    def is_immutable(self) -> bool:
        """True when nothing below can ever change (the kernel may cache without limit)."""

    def read(self, node: Node, size: int, offset: int) -> bytes:
        return read_node(node, size, offset)

    def describe(self) -> dict[str, Any]:
        """What this view shows, for logs and `hangarfs mounts`."""
        return {}

    def refresh(self) -> None:  # noqa: B027 (optional: only moving views have anything to re-read)
        """Re-read moving refs now (a moving view calls this from a watcher thread)."""

    def usage(self) -> tuple[int, int] | None:
        """(bytes the repository holds, bytes free on its filesystem) for ``statfs``; None: unknown."""
        return None

    def uniform_file_size(self, path: str) -> int | None:
        """The size of every sample file in directory ``path`` when the schema fixes it, else None.

        A listing can then give every file's attributes without reading each sample's record (the
        low-level adapter's READDIRPLUS of a million samples); dotfiles in it are not samples."""
        return None

    def tracks_open_files(self) -> bool:
        """True when the view wants ``open_file``/``release_file`` for every opened file (a lazy view
        keeps what open files read in its cache); the adapter then does not use the kernel's no-open
        mode, and keeps pages cached by answering ``keep_cache`` instead."""
        return False

    def open_file(self, node: Node) -> Any:
        """A file is opened (only when ``tracks_open_files``); returns a token for ``release_file``."""
        return None

    def release_file(self, token: Any) -> None:  # noqa: B027 (optional hook)
        """The file ``open_file`` returned ``token`` for was closed."""

    def list(self, path: str, with_nodes: bool = False) -> Iterator[tuple[str, Node | None]] | None:
        """One stream for the FUSE adapter's listing loop: ``list_nodes``, or ``list_names`` with a
        directory marker in place of a node (entries without attributes carry None)."""
        if with_nodes:
            return self.list_nodes(path)
        names = self.list_names(path)
        if names is None:
            return None
        return ((name, DIR_HINT if is_dir else None) for name, is_dir in names)


class WritableMountSource(MountSource):
    """A view that files can be written into (the staging mount): the calls its FUSE adapter makes.

    A written file is held by a handle (whatever ``create``/``open_write`` return) until ``release``;
    ``flush`` stages its bytes and raises if they cannot be staged. Errors are hangarfs errors or
    ``OSError`` with an errno; the adapter turns them into errnos.
    """

    @abc.abstractmethod
    def create(self, path: str) -> Any:
        """A handle on a new (or emptied) file at ``path``."""

    @abc.abstractmethod
    def open_write(self, path: str, *, truncate: bool) -> Any:
        """A handle on the existing file at ``path``, for writing."""

    @abc.abstractmethod
    def write(self, handle: Any, data: bytes, offset: int) -> int:
        """Write into a handle's file; returns the number of bytes written."""

    @abc.abstractmethod
    def truncate(self, handle: Any, length: int) -> None:
        """Shorten or extend a handle's file."""

    @abc.abstractmethod
    def flush(self, handle: Any) -> None:
        """Stage what the handle's file holds now (raises if it cannot)."""

    @abc.abstractmethod
    def release(self, handle: Any) -> BaseException | None:
        """Forget a closed handle; returns why its last flush staged nothing, if it failed."""

    @abc.abstractmethod
    def set_size(self, path: str, length: int) -> None:
        """``truncate(path)``: of the newest open handle on it, or of the stored file (staged now)."""

    @abc.abstractmethod
    def unlink(self, path: str) -> None: ...

    @abc.abstractmethod
    def rename(self, old: str, new: str) -> None: ...

    @abc.abstractmethod
    def mkdir(self, path: str) -> None: ...

    @abc.abstractmethod
    def rmdir(self, path: str) -> None: ...

    @abc.abstractmethod
    def set_times(self, path: str, mtime_ns: int | None) -> None:
        """``utimensat``: the file keeps ``mtime_ns`` (None: now) until it changes."""

    @abc.abstractmethod
    def set_mode(self, path: str, mode: int) -> None:
        """``chmod``: the file shows ``mode`` from now on (``Node.mode``)."""

    @abc.abstractmethod
    def sync(self) -> None:
        """Make everything staged so far durable against power loss."""

    @abc.abstractmethod
    def usage(self) -> tuple[int, int]:
        """(bytes the repository holds, bytes free on its filesystem), for ``statfs``."""

    @abc.abstractmethod
    def scratch_files(self) -> list[str]:
        """Paths of files kept only until unmount (logged when the mount ends)."""

    @abc.abstractmethod
    def commit(self, message: str) -> str:
        """Commit what is staged; returns the commit digest."""
