"""The tasks this service runs: every module here defines a ``rocketry.Grouper`` named ``group``.

Add a module with ``group = Grouper()`` and decorate functions with ``@group.task(...)``;
the service finds it at start-up.
"""
