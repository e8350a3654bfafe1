"""Fixtures: settings, stores on SQLite and PostgreSQL, and a real scheduler behind the real app."""

from control.auth import TokenRegistry
from control.batching import BatchQueue
from control.engine.loop import ControlScheduler
from control.events import EventHub
from control.services.assemble import Services, build_services
from control.settings import Settings
from control.stores.base import Stores
from control.stores.sql import open_stores
from control.stores.sql.engine import database_url

import asyncio
import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from rocketry import Rocketry

from api import create_app
from scheduler import create_scheduler
from tests.utils.waiting import async_wait_until

POSTGRES_URL = os.environ.get(
    "SCHEDULER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get("SCHEDULER_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
TEST_TASKS = "tests.support_tasks"


def make_settings(tmp_path: Path, **overrides) -> Settings:
    values = {
        "database": str(tmp_path / "scheduler.db"),
        "task_packages": [TEST_TASKS],
        "task_func_packages": [TEST_TASKS],
        "cycle_sleep": 0.05,
        "shutdown_timeout": 4.0,
        "retention_interval": 3600.0,
        "batch_example": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def reachable(url: str) -> bool:
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.SQLAlchemyError:
        return False


def postgres_available() -> bool:
    return reachable(POSTGRES_URL)


@pytest.fixture(scope="session")
def postgres_url():
    """The test PostgreSQL server; skips when it is unreachable."""
    if not postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    return POSTGRES_URL


@contextlib.contextmanager
def mariadb_database(server_url: str = MARIADB_URL):
    """A fresh database on the MariaDB (or MySQL) server, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE `{name}`"))
        engine.dispose()


@contextlib.contextmanager
def postgres_schema(server_url: str):
    """A fresh schema on the PostgreSQL server (the URL's search path), dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{server_url}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@contextlib.contextmanager
def postgres_database(server_url: str):
    """A fresh, empty database on the PostgreSQL server, dropped afterwards (with whatever is
    still connected to it)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")  # no CREATE DATABASE in a transaction
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def mariadb_database_url():
    """A fresh database on the test MariaDB (or MySQL) server, dropped afterwards; skips
    when the server is unreachable."""
    if not reachable(MARIADB_URL):
        pytest.skip(f"MariaDB not reachable at {MARIADB_URL}")
    with mariadb_database() as url:
        yield url


@pytest.fixture
def postgres_schema_url(postgres_url):
    with postgres_schema(postgres_url) as url:
        yield url


@pytest.fixture
def postgres_database_url(postgres_url):
    """A fresh, empty PostgreSQL database."""
    with postgres_database(postgres_url) as url:
        yield url


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def store_url(request, tmp_path):
    """Every store backend: SQLite always, PostgreSQL and MariaDB when reachable."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'logs.db'}"
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_schema_url")
    return database_url(request.getfixturevalue("mariadb_database_url"), base=tmp_path)


@dataclass
class RunningService:
    client: httpx.AsyncClient
    app: Rocketry
    scheduler: ControlScheduler
    stores: Stores
    settings: Settings
    services: Services

    def task(self, name: str):
        return self.app.session[name]


async def start_service(settings: Settings):
    stores = open_stores(settings.database_url)
    events = EventHub(buffer=settings.event_buffer)
    batch = BatchQueue.from_settings(settings) if settings.batch_example else None
    app = create_scheduler(settings, stores, events=events, batch=batch)
    scheduler = app.session.scheduler
    services = build_services(settings, app, stores=stores, events=events)
    api = create_app(
        services,
        settings=settings,
        tokens=TokenRegistry(settings.token_specs()),
        batch=batch,
    )
    events.bind(asyncio.get_running_loop())  # what the app's lifespan does in the real server
    serving = asyncio.create_task(scheduler.serve())
    await async_wait_until(lambda: scheduler.is_ready or serving.done(), what="scheduler start")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://127.0.0.1:8000")
    return RunningService(client, app, scheduler, stores, settings, services), serving


async def stop_service(env: RunningService, serving: asyncio.Task) -> None:
    await env.client.aclose()
    env.scheduler.request_stop()
    await asyncio.wait_for(serving, timeout=15)
    env.stores.close()


@pytest.fixture
async def service(tmp_path):
    """The real app over a real, running scheduler with the test tasks and a SQLite file."""
    env, serving = await start_service(make_settings(tmp_path))
    try:
        yield env
    finally:
        await stop_service(env, serving)
