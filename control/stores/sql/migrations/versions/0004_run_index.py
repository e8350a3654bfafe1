"""A run's log records by its id alone (``/logs?run_id=``).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_task_log_run", "task_log", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_task_log_run", table_name="task_log")
