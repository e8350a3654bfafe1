"""Newest-first pages over a table with ``created`` and ``id`` columns, continued by a cursor."""

from control.logstores.base import LogCursor

import sqlalchemy as sa


def newest_first(
    conn: sa.Connection,
    table: sa.Table,
    where: list[sa.ColumnElement],
    *,
    limit: int,
    cursor: LogCursor | None,
) -> tuple[list[sa.Row], LogCursor | None]:
    """Up to ``limit`` rows after ``cursor``, and the cursor of the next page (None at the end)."""
    created, id_ = table.c.created, table.c.id
    stmt = sa.select(table).where(*where)
    if cursor is not None:
        # The first condition alone can use the (created, id) indexes.
        stmt = stmt.where(created <= cursor.created, sa.or_(created < cursor.created, id_ < cursor.id))
    rows = conn.execute(stmt.order_by(created.desc(), id_.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    more = len(rows) > limit
    return page, (LogCursor(created=page[-1].created, id=page[-1].id) if more else None)
