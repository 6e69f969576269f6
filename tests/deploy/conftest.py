"""Fixtures for loopline.deploy tests."""
