"""Errors raised by colibri-glasspane.

Every error is a ``GlasspaneError``; catch that one root to handle them all::

    GlasspaneError
"""

from __future__ import annotations


class GlasspaneError(Exception):
    """Root of every error colibri-glasspane raises."""
