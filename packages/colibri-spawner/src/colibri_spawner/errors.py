"""Errors raised by colibri-spawner.

Every error is a ``SpawnError``; catch that one root to handle them all::

    SpawnError
"""

from __future__ import annotations


class SpawnError(Exception):
    """Root of every error colibri-spawner raises."""
