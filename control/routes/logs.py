"""Routes of the ``/logs`` resource: the run history of every task, filtered and paged."""

from control.deps import READERS, HistoryDep
from control.schemas.logs import LogFilter, LogList

from typing import Annotated

from fastapi import APIRouter, Query

router = APIRouter(prefix="/logs", tags=["logs"])


@router.get("", dependencies=READERS)
async def list_logs(filters: Annotated[LogFilter, Query()], history: HistoryDep) -> LogList:
    """Read the run history, newest first, filtered by task, action and time."""
    return await history.logs(filters)
