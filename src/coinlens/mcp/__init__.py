"""Coinlens mcp layer."""
