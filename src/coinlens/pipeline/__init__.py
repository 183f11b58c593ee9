"""Coinlens pipeline layer."""
