"""Alembic's environment: the revisions run on the connection ``migrate`` holds under its lock,
inside its transaction (Alembic's recipe for sharing a connection), never on one of their own."""

from control.stores.sql.tables import metadata

from alembic import context

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata)
with context.begin_transaction():  # a no-op: the caller's transaction is already open
    context.run_migrations()
