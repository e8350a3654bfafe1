"""Helpers shared by the tests: waiting on conditions, building apps, starting the real service."""
