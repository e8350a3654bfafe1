"""The service layer: the only code that reads and changes the Rocketry session for the API.

It knows nothing of HTTP. ``TaskService`` covers tasks, ``DefinitionService`` what is kept
about them (export, import, broken definitions, session parameters, condition checks),
``RuntimeService`` the scheduler itself (state, health, logs, shutdown).
"""
