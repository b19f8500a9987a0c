"""The ``hangarfs`` command: git-like, on the repository in the current directory or ``-C PATH``.

One module per group of commands; each command parses its arguments, calls the engine (or the fs layer
for files and mounts) and prints. ``main`` is the entry point (``hangarfs = hangarfs.cli:main``).
"""

from __future__ import annotations

from hangarfs.cli import history_commands, mount_commands, remote_commands, repo_commands, write_commands
from hangarfs.cli.app import accept_directory_everywhere, main

accept_directory_everywhere(main)

__all__ = ['history_commands', 'main', 'mount_commands', 'remote_commands', 'repo_commands', 'write_commands']
