"""Coinlens: a self-hosted crypto research platform."""

__version__ = "0.1.0"
