"""Rocketry, adapted to run beside an HTTP API: session, scheduler loop, task processes."""
