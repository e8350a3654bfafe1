"""What every SQL store of the service does alike: deleting old rows a bounded chunk at a time."""

import sqlalchemy as sa

CHUNK = 5_000


def delete_in_chunks(engine: sa.Engine, table: sa.Table, where: sa.ColumnElement) -> int:
    """Delete the rows matching ``where``, ``CHUNK`` per transaction (so that a large prune
    never holds the database's write lock for long); returns how many went."""
    victims = sa.select(table.c.id).where(where).limit(CHUNK).scalar_subquery()
    removed = 0
    while True:
        with engine.begin() as conn:
            count = conn.execute(sa.delete(table).where(table.c.id.in_(victims))).rowcount
        removed += count
        if count < CHUNK:
            return removed
