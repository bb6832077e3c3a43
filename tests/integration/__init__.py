"""Tests that run the engine against real servers."""
