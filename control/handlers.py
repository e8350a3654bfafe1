"""Maps the service's exceptions to JSON error responses, so routes need no try/except."""

from control.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    StoreUnavailableError,
    TaskStateError,
)
from control.services.definitions import ImportRefusedError

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInputError)
    # The same shape as FastAPI's own validation errors, so clients read one format.
    error = {"type": exc.kind, "loc": [exc.location, exc.field], "msg": str(exc), "input": exc.value}
    return JSONResponse(jsonable_encoder({"detail": [error]}), status_code=422)


async def _unauthenticated(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


async def _forbidden(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=403)


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503)


async def _import_refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ImportRefusedError)
    return JSONResponse(exc.result.model_dump(mode="json"), status_code=422)


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(TaskStateError, _conflict)
    app.add_exception_handler(ImportRefusedError, _import_refused)
    app.add_exception_handler(InvalidInputError, _invalid)
    app.add_exception_handler(AuthenticationError, _unauthenticated)
    app.add_exception_handler(PermissionDeniedError, _forbidden)
    app.add_exception_handler(StoreUnavailableError, _unavailable)
