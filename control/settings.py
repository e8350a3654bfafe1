"""The service's typed configuration: defaults, environment (``SCHEDULER_*``), ``.env`` and flags."""

from control.auth import TokenSpec, load_token_file
from control.stores.sql.engine import database_url

import os
import socket
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARDS = ("0.0.0.0", "::", "")


class Settings(BaseSettings):
    """Built once by ``main.py`` (tests build their own) and passed down."""

    model_config = SettingsConfigDict(env_prefix="SCHEDULER_", env_file=".env", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="Address the HTTP API listens on")
    port: Annotated[int, Field(ge=0, le=65535)] = Field(8000, description="Port of the HTTP API")
    database: str = Field(
        "data/scheduler.db",
        description="SQLite file path, or a SQLAlchemy URL such as postgresql://host/db",
    )
    schema_lock_timeout: Annotated[float, Field(gt=0)] = Field(
        120.0,
        description=(
            "Seconds to wait at start for another process creating or upgrading the database's "
            "tables before giving up"
        ),
    )
    task_packages: list[str] = Field(
        ["tasks"], description="Packages whose modules define the tasks (rocketry Groupers)"
    )
    task_func_packages: list[str] = Field(
        ["tasks"], description="Packages whose functions tasks created through the API may run"
    )
    command_tasks: bool = Field(
        False,
        description="Allow creating tasks that run shell commands (remote code execution: off by default)",
    )
    max_output_bytes: Annotated[int, Field(gt=0)] = Field(
        65_536, description="Output (prints and logging) kept per run; beyond it, one truncation line"
    )
    event_buffer: Annotated[int, Field(gt=0, le=1_000_000)] = Field(
        1000, description="Events a live-stream client may fall behind before it is disconnected"
    )
    batch_example: bool = Field(
        True, description="Serve the batch example: /batch WebSocket + batch_requests task"
    )
    batch_size: Annotated[int, Field(gt=0, le=10_000)] = Field(10, description="K: requests taken per batch")
    batch_every: Annotated[float, Field(gt=0)] = Field(2.0, description="N: seconds between two batches")
    batch_queue_limit: Annotated[int, Field(gt=0)] = Field(
        1000, description="Requests that may wait; beyond it a request is answered with an error"
    )
    batch_max_message_bytes: Annotated[int, Field(gt=0)] = Field(
        65_536, description="Largest /batch message; a larger one closes the connection (1009)"
    )
    batch_max_pending_replies: Annotated[int, Field(gt=0)] = Field(
        100,
        description="Replies a /batch connection may have unsent; a client that reads none of them "
        "is closed (1008), one whose requests wait for batches is read no further meanwhile",
    )
    cycle_sleep: Annotated[float, Field(gt=0, le=60)] = Field(
        0.1, description="Longest time the scheduler sleeps between two passes over the tasks"
    )
    max_process_tasks: Annotated[int, Field(gt=0, le=1024)] = Field(
        default_factory=lambda: os.cpu_count() or 1,
        description="Task processes that may run at once; more wait, with status queued (default: CPUs)",
    )
    default_timeout: Annotated[float, Field(gt=0)] = Field(
        1800.0, description="Seconds a run may take before it is terminated, unless the task sets one"
    )
    shutdown_timeout: Annotated[float, Field(gt=0, le=60)] = Field(
        7.0, description="Seconds a stop waits for running tasks to end before giving up on them"
    )
    retention_days: Annotated[float | None, Field(gt=0)] = Field(
        30.0, description="Log records older than this many days are pruned (null keeps them)"
    )
    retention_per_task: Annotated[int | None, Field(gt=0)] = Field(
        10_000, description="At most this many log records are kept per task (null: no limit)"
    )
    retention_interval: Annotated[float, Field(gt=0)] = Field(
        300.0, description="Seconds between two background prunes of the log and the audit trail"
    )
    audit_retention_days: Annotated[float | None, Field(gt=0)] = Field(
        365.0, description="Audit entries older than this many days are pruned (null keeps them)"
    )
    log_level: str = Field("info", description="Level of the service's own log on stderr")
    tokens: list[TokenSpec] = Field(
        [], description="API tokens: a JSON list of {name, role, digest} (see python -m control.tokens)"
    )
    tokens_file: Path | None = Field(None, description="A JSON file holding more tokens in the same form")
    cors_origins: list[str] = Field([], description="Origins allowed to call the API from a browser")
    allowed_hosts: list[str] = Field(
        [],
        description=(
            "Host names the service answers to (the Host header), besides the loopback names and "
            '--host; ["*"] answers any (not advised: DNS rebinding)'
        ),
    )
    trusted_proxies: list[str] = Field(
        [],
        description=(
            "Addresses of reverse proxies whose X-Forwarded-For/-Proto headers are believed "
            "(none by default: any client could claim any address)"
        ),
    )
    max_body_bytes: Annotated[int, Field(gt=0)] = Field(1 << 20, description="Larger request bodies get 413")
    docs: bool = Field(True, description="Serve the OpenAPI schema and /docs")
    web_session_hours: Annotated[float, Field(gt=0)] = Field(
        12.0, description="How long a browser sign-in lasts"
    )

    replica: str | None = Field(
        None,
        max_length=200,
        description="This replica's name among replicas sharing a PostgreSQL database (default host:port)",
    )

    celery_broker: str = Field(
        "amqp://guest:guest@127.0.0.1:5672//",
        max_length=2000,
        description="Broker of the Celery workers that run `execution: celery` tasks (RabbitMQ or Redis URL)",
    )
    celery_queue: str = Field("rocketry-control", max_length=200, description="Celery queue the runs go to")

    def replica_name(self) -> str:
        return self.replica or f"{socket.gethostname()}:{self.port}"

    def token_specs(self) -> list[TokenSpec]:
        """The tokens from ``tokens`` and from ``tokens_file``."""
        extra = load_token_file(self.tokens_file) if self.tokens_file is not None else []
        return [*self.tokens, *extra]

    def answered_hosts(self) -> list[str]:
        """What the Host header of a request may name: loopback, the listening address
        (unless it is a wildcard), and ``allowed_hosts``."""
        host = self.host.strip("[]")
        own = [] if host in _WILDCARDS else [f"[{host}]" if ":" in host else host]
        return list(dict.fromkeys([*_LOOPBACK_NAMES, *own, *self.allowed_hosts]))

    @property
    def database_url(self) -> str:
        return database_url(self.database, base=Path.cwd())
