"""The tables of the SQL stores: the log, run output, marks, the audit trail, definitions."""

from control.actions import OUTCOMES
from control.stores.sql.engine import Id, LongText

import sqlalchemy as sa

metadata = sa.MetaData()

task_log = sa.Table(
    "task_log",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("task_name", sa.String(255), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("created", sa.Double(), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("start", sa.Double()),
    sa.Column("end", sa.Double()),
    sa.Column("runtime", sa.Double()),
    sa.Column("message", LongText),
    sa.Column("exc_text", LongText),
    # The leadership epoch of the replica that wrote it (see coordination.py).
    sa.Column("epoch", sa.BigInteger()),
    # Pages run newest first, by (created, id), with or without a task filter; Rocketry
    # asks for the newest record of a task and action.
    sa.Index("ix_task_log_created", "created", "id"),
    sa.Index("ix_task_log_task_created", "task_name", "created", "id"),
    sa.Index("ix_task_log_task_action_created", "task_name", "action", "created"),
    sa.Index("ix_task_log_action_created", "action", "created"),
    # A run's records share its run id: which runs never got an outcome (after a crash).
    sa.Index("ix_task_log_task_run", "task_name", "run_id", "action"),
    # A run's records by its id alone (``/logs?run_id=``).
    sa.Index("ix_task_log_run", "run_id"),
)
# A run starts once and ends once, whoever writes late: a deposed leader's records of a run
# the next leader already settled are dropped (INSERT ... ON CONFLICT DO NOTHING). MySQL has
# no partial indexes; it is never shared by replicas.
for _name, _where in (
    ("ux_task_log_run_started", task_log.c.action == "run"),
    ("ux_task_log_run_ended", task_log.c.action.in_(OUTCOMES)),
):
    sa.Index(_name, task_log.c.run_id, unique=True, postgresql_where=_where, sqlite_where=_where).ddl_if(
        dialect=("postgresql", "sqlite")
    )
LOG_FIELDS = (
    "task_name",
    "action",
    "created",
    "run_id",
    "start",
    "end",
    "runtime",
    "message",
    "exc_text",
    "epoch",
)

run_output = sa.Table(
    "run_output",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("task_name", sa.String(255), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("created", sa.Double(), nullable=False),
    sa.Column("stream", sa.String(10), nullable=False),
    sa.Column("text", LongText, nullable=False),
    sa.Index("ix_run_output_run", "task_name", "run_id", "seq"),
    sa.Index("ix_run_output_created", "created"),
)
OUTPUT_FIELDS = ("task_name", "run_id", "seq", "created", "stream", "text")

# Facts about the log as a whole: how far back every run is known to have an outcome.
log_marks = sa.Table(
    "log_marks",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("value", sa.Double(), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("created", sa.Double(), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("client", sa.String(100)),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("task", sa.String(255)),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Index("ix_audit_log_created", "created", "id"),
    sa.Index("ix_audit_log_actor_created", "actor", "created", "id"),
    sa.Index("ix_audit_log_task_created", "task", "created", "id"),
)

task_definitions = sa.Table(
    "task_definitions",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    # "runtime": the whole task; "code": the fields edited over the task's code definition.
    sa.Column("origin", sa.String(10), nullable=False),
    sa.Column("fields", sa.JSON(), nullable=False),
    sa.Column("updated", sa.Double(), nullable=False),
)

task_versions = sa.Table(
    "task_versions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("task_name", sa.String(255), nullable=False),
    sa.Column("created", sa.Double(), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("client", sa.String(100)),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("changes", sa.JSON(), nullable=False),
    sa.Column("reason", sa.String(1000)),
    # The stored definition after the change (null after a delete): what a restore applies.
    sa.Column("origin", sa.String(10), nullable=False),
    sa.Column("definition", sa.JSON()),
    sa.Index("ix_task_versions_task_created", "task_name", "created", "id"),
    sa.Index("ix_task_versions_created", "created", "id"),
)

session_parameters = sa.Table(
    "session_parameters",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("value", sa.JSON()),
    sa.Column("updated", sa.Double(), nullable=False),
)

# -- replicas sharing one database (see coordination.py) -------------------------------

# One row: the current leadership epoch, who holds it, and whether it was given up.
leadership = sa.Table(
    "leadership",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("epoch", sa.BigInteger(), nullable=False),
    sa.Column("replica", sa.String(200)),
    sa.Column("since", sa.Double()),
    sa.Column("released", sa.Boolean(), nullable=False),
)

# Every start, claimed before the task starts: the seq-th start of a task happens once.
run_claims = sa.Table(
    "run_claims",
    metadata,
    sa.Column("task_name", sa.String(255), primary_key=True),
    sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.String(64), nullable=False, unique=True),
    sa.Column("epoch", sa.BigInteger(), nullable=False),
    sa.Column("created", sa.Double(), nullable=False),
    sa.Index("ix_run_claims_epoch", "epoch"),
)

# The event stream every replica reads, numbered in commit order.
shared_events = sa.Table(
    "shared_events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("task", sa.String(255)),
    sa.Column("created", sa.Double(), nullable=False),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Index("ix_shared_events_created", "created"),
)

# Run and terminate requests a follower passes to the leader, and the leader's answers.
leader_requests = sa.Table(
    "leader_requests",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("task", sa.String(255), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("created", sa.Double(), nullable=False),
    sa.Column("answer", sa.JSON()),
    sa.Column("answered", sa.Double()),
    sa.Index("ix_leader_requests_open", "answered", "id"),
)

# Runs sent to workers (Celery): see remote.py.
remote_runs = sa.Table(
    "remote_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("task_name", sa.String(255), nullable=False),
    sa.Column("sent", sa.Double(), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),  # what the worker is sent (sent again after a failover)
    sa.Column("worker", sa.String(255)),
    sa.Column("started", sa.Double()),
    sa.Column("beat", sa.Double()),
    sa.Column("outcome", sa.String(16)),
    sa.Column("ended", sa.Double()),
    sa.Column("message", LongText),
    sa.Column("exc_text", LongText),
)
