"""Maps the service's exceptions to JSON error responses, so routes need no try/except."""

from control.errors import (
    AuthenticationError,
    InvalidInputError,
    LeaderUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    StoreUnavailableError,
    TaskStateError,
)
from control.services.definitions import ImportRefusedError

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

# Each of the service's errors and its status; the body is ``{"detail": message}``.
STATUSES: dict[type[Exception], int] = {
    NotFoundError: 404,
    TaskStateError: 409,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    StoreUnavailableError: 503,
    LeaderUnavailableError: 503,
}
_HEADERS = {AuthenticationError: {"WWW-Authenticate": "Bearer"}}


async def _message(_request: Request, exc: Exception) -> JSONResponse:
    kind = next(kind for kind in STATUSES if isinstance(exc, kind))
    return JSONResponse({"detail": str(exc)}, status_code=STATUSES[kind], headers=_HEADERS.get(kind))


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInputError)
    # The same shape as FastAPI's own validation errors, so clients read one format.
    error = {"type": exc.kind, "loc": [exc.location, exc.field], "msg": str(exc), "input": exc.value}
    return JSONResponse(jsonable_encoder({"detail": [error]}), status_code=422)


async def _import_refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ImportRefusedError)
    return JSONResponse(exc.result.model_dump(mode="json"), status_code=422)


def add_error_handlers(app: FastAPI) -> None:
    for kind in STATUSES:
        app.add_exception_handler(kind, _message)
    app.add_exception_handler(ImportRefusedError, _import_refused)
    app.add_exception_handler(InvalidInputError, _invalid)
