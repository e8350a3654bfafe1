"""Replica tests start the real service as the e2e tests do."""

from tests.e2e.conftest import start  # noqa: F401  (the fixture)
