"""Authpipe server: a credential broker for your users' third-party accounts."""

__version__ = "0.1.0"
