"""The ``/audit`` route: who changed what, from where, and how it ended (admins only)."""

from control.deps import ADMINS, AuditDep
from control.schemas.audit import AuditFilter, AuditList

from typing import Annotated

from fastapi import APIRouter, Query

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", dependencies=ADMINS)
async def list_audit(filters: Annotated[AuditFilter, Query()], audit: AuditDep) -> AuditList:
    """Read the audit trail, newest first."""
    return await audit.page(filters)
