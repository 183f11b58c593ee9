"""Coinlens web layer."""
