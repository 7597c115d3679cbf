"""Errors of the storage layer."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every storage error."""


class MigrationError(StorageError):
    """The database's schema cannot be brought to the version this code needs."""


class JobNotFoundError(StorageError):
    """No job has that id."""
