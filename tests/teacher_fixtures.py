"""Fixtures for the local provider-protocol test server (owner: teacher)."""
