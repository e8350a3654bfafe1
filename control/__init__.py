"""The control plane's supporting package; importing it puts rocketry on pydantic.v1."""

from control import bridge

bridge.install()
