"""Errors every layer may raise; each carries a message safe to show a user (never a secret)."""

from __future__ import annotations


class AuthpipeError(Exception):
    """Base of Authpipe's own errors."""


class ConfigError(AuthpipeError):
    """A setting is missing or malformed. The message is one line, fit for stderr."""
