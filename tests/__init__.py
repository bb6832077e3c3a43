"""Mailshift test suite."""
