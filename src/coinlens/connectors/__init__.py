"""Coinlens connectors layer."""
