"""Helpers for testing dcc and code built on it (a tiny local model)."""
