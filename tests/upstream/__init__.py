"""Rocketry's own test suite, run under the pydantic bridge."""
