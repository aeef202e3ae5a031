"""Errors raised by colibri-daemon.

Every error is a ``DaemonError``; catch that one root to handle them all::

    DaemonError
"""

from __future__ import annotations


class DaemonError(Exception):
    """Root of every error colibri-daemon raises."""
