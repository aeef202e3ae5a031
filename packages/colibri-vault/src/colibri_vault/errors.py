"""Errors raised by colibri-vault.

Every error is a ``VaultError``; catch that one root to handle them all::

    VaultError
"""

from __future__ import annotations


class VaultError(Exception):
    """Root of every error colibri-vault raises."""
