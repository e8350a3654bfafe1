"""Pages that run newest first, continued by an opaque cursor: the log, the audit trail, versions."""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass

MAX_ID = 2**63 - 1  # the largest id a store hands out (a signed 64-bit integer)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after the last entry of a page: its time and id (pages run newest first)."""

    created: float
    id: int

    def encode(self) -> str:
        raw = f"{self.created!r}:{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            created, _, id_ = raw.partition(":")
            cursor = cls(created=float(created), id=int(id_))
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError("cursor is not one this service returned") from exc
        # Ids are 64-bit in every database; a time is finite.
        if not (0 <= cursor.id <= MAX_ID and math.isfinite(cursor.created)):
            raise ValueError("cursor is not one this service returned")
        return cursor
