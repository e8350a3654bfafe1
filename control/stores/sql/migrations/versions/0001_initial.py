"""The schema before replicas (as of 97a7fad): the log, run output, marks, audit, definitions.

Revisions are snapshots: the types are written out here, not taken from ``engine.py``, so that
a later change there cannot change what this revision made.

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: the rowid
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "task_log",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("start", sa.Double()),
        sa.Column("end", sa.Double()),
        sa.Column("runtime", sa.Double()),
        sa.Column("message", LONG_TEXT),
        sa.Column("exc_text", LONG_TEXT),
    )
    op.create_index("ix_task_log_created", "task_log", ["created", "id"])
    op.create_index("ix_task_log_task_created", "task_log", ["task_name", "created", "id"])
    op.create_index("ix_task_log_task_action_created", "task_log", ["task_name", "action", "created"])
    op.create_index("ix_task_log_action_created", "task_log", ["action", "created"])
    op.create_index("ix_task_log_task_run", "task_log", ["task_name", "run_id", "action"])

    op.create_table(
        "run_output",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("stream", sa.String(10), nullable=False),
        sa.Column("text", LONG_TEXT, nullable=False),
    )
    op.create_index("ix_run_output_run", "run_output", ["task_name", "run_id", "seq"])
    op.create_index("ix_run_output_created", "run_output", ["created"])

    op.create_table(
        "log_marks",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("value", sa.Double(), nullable=False),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("client", sa.String(100)),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("task", sa.String(255)),
        sa.Column("status", sa.Integer(), nullable=False),
    )
    op.create_index("ix_audit_log_created", "audit_log", ["created", "id"])
    op.create_index("ix_audit_log_actor_created", "audit_log", ["actor", "created", "id"])
    op.create_index("ix_audit_log_task_created", "audit_log", ["task", "created", "id"])

    op.create_table(
        "task_definitions",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("origin", sa.String(10), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("updated", sa.Double(), nullable=False),
    )

    op.create_table(
        "task_versions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("client", sa.String(100)),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(1000)),
        sa.Column("origin", sa.String(10), nullable=False),
        sa.Column("definition", sa.JSON()),
    )
    op.create_index("ix_task_versions_task_created", "task_versions", ["task_name", "created", "id"])
    op.create_index("ix_task_versions_created", "task_versions", ["created", "id"])

    op.create_table(
        "session_parameters",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("value", sa.JSON()),
        sa.Column("updated", sa.Double(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "session_parameters",
        "task_versions",
        "task_definitions",
        "audit_log",
        "log_marks",
        "run_output",
        "task_log",
    ):
        op.drop_table(table)  # its indexes go with it
