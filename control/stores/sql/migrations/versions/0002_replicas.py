"""Replicas on PostgreSQL (d43d5e7): epochs in the log, runs recorded once, coordination tables.

The epoch of each log record; a run's start and outcome kept once each (partial unique
indexes); the tables of coordination (leadership, run claims, shared events, requests to the
leader).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: the rowid
# Partial unique indexes: PostgreSQL and SQLite have them; MySQL and MariaDB do not (and are
# never shared by replicas). The outcomes are those of control/actions.py when this was written.
PARTIAL = ("postgresql", "sqlite")
RUN_STARTED = "action = 'run'"
RUN_ENDED = "action IN ('success', 'fail', 'terminate', 'inaction', 'crash')"


def upgrade() -> None:
    op.add_column("task_log", sa.Column("epoch", sa.BigInteger()))
    if op.get_bind().dialect.name in PARTIAL:
        for name, where in (("ux_task_log_run_started", RUN_STARTED), ("ux_task_log_run_ended", RUN_ENDED)):
            op.create_index(
                name,
                "task_log",
                ["run_id"],
                unique=True,
                postgresql_where=sa.text(where),
                sqlite_where=sa.text(where),
            )

    op.create_table(
        "leadership",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("replica", sa.String(200)),
        sa.Column("since", sa.Double()),
        sa.Column("released", sa.Boolean(), nullable=False),
    )

    op.create_table(
        "run_claims",
        sa.Column("task_name", sa.String(255), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.UniqueConstraint("run_id"),
    )
    op.create_index("ix_run_claims_epoch", "run_claims", ["epoch"])

    op.create_table(
        "shared_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("task", sa.String(255)),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_shared_events_created", "shared_events", ["created"])

    op.create_table(
        "leader_requests",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("task", sa.String(255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("answer", sa.JSON()),
        sa.Column("answered", sa.Double()),
    )
    op.create_index("ix_leader_requests_open", "leader_requests", ["answered", "id"])


def downgrade() -> None:
    for table in ("leader_requests", "shared_events", "run_claims", "leadership"):
        op.drop_table(table)
    if op.get_bind().dialect.name in PARTIAL:
        op.drop_index("ux_task_log_run_ended", table_name="task_log")
        op.drop_index("ux_task_log_run_started", table_name="task_log")
    op.drop_column("task_log", "epoch")
