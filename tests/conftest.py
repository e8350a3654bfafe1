"""Shared fixtures: the pydantic bridge is installed before any test imports rocketry."""

import control  # noqa: F401  (puts rocketry on pydantic.v1 for the whole test session)

pytest_plugins = ["tests.utils.fixtures"]
