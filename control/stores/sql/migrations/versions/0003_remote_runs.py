"""Runs on Celery workers: one row each, from the send until a leader settles it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "remote_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("sent", sa.Double(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("worker", sa.String(255)),
        sa.Column("started", sa.Double()),
        sa.Column("beat", sa.Double()),
        sa.Column("outcome", sa.String(16)),
        sa.Column("ended", sa.Double()),
        sa.Column("message", LONG_TEXT),
        sa.Column("exc_text", LONG_TEXT),
    )


def downgrade() -> None:
    op.drop_table("remote_runs")
