"""Typed models and the error tree shared by every layer."""
