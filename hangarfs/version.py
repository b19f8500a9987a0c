"""The version of the hangarfs package (recorded in every repository it creates)."""

__version__ = '0.1.0'
