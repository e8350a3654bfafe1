"""The service's own exceptions; the API maps them to 404, 409 and 422."""


class NotFoundError(LookupError):
    """What the request names does not exist (404)."""


class TaskNotFoundError(NotFoundError):
    """No task has that name."""

    def __init__(self, name: str):
        super().__init__(f"Task '{name}' not found")
        self.name = name


class VersionNotFoundError(NotFoundError):
    """The task has no version with that id."""


class ParameterNotFoundError(NotFoundError):
    """No session parameter has that name."""


class TaskStateError(RuntimeError):
    """The action conflicts with what the task is doing (for example, it is not running)."""


class InvalidInputError(ValueError):
    """A value the scheduler cannot accept; ``field`` names where it was given."""

    kind = "value_error"

    def __init__(self, message: str, *, field: str, value: object = None, location: str = "body"):
        super().__init__(message)
        self.field = field
        self.value = value
        self.location = location


class InvalidConditionError(InvalidInputError):
    """A condition string that Rocketry cannot parse; the message is the parser's."""

    kind = "condition_error"


class InvalidDefinitionError(InvalidInputError):
    """A definition that cannot become a task (command tasks are off, its code task is gone...)."""

    kind = "definition_error"


class InvalidTargetError(InvalidDefinitionError):
    """What a task would run is not a function it may run (see ``control.targets``)."""


class InvalidParametersError(InvalidInputError):
    """Run parameters the task's function does not accept."""

    kind = "parameters_error"


class AuthenticationError(Exception):
    """No valid credentials came with the request (401)."""


class PermissionDeniedError(PermissionError):
    """Valid credentials without the role the request needs, or a missing CSRF token (403)."""


class LeaderUnavailableError(RuntimeError):
    """With replicas: no leader answered a request that only the leader can carry out (503)."""


class StoreUnavailableError(RuntimeError):
    """The database refused a write the request depends on (503); nothing was changed."""
