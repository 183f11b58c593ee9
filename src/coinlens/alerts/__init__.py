"""Coinlens alerts layer."""
