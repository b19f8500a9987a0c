"""``python -m hangarfs.cli``."""

from hangarfs.cli import main

main()
