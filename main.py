"""Starts the service: settings, log store, scheduler and API, served together until stopped."""

import control  # noqa: F401  (first: puts rocketry on pydantic.v1 before anything imports it)
from control.auth import TokenRegistry, check_exposure
from control.batching import BatchQueue
from control.events import EventHub
from control.runner import ControlServer, bind_listener, run_service
from control.services.assemble import build_services
from control.settings import Settings
from control.stores.base import StoreOpenError
from control.stores.sql import Retention, open_stores

import argparse
import asyncio
import gc
import logging
import os
import sys
import threading

import uvicorn
from pydantic import ValidationError

from api import create_app
from scheduler import create_scheduler

EXIT_CONFIG = 2
EXIT_BIND = 3


def parse_args(argv: list[str] | None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description="Rocketry scheduler with an HTTP control plane")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument("--database", help="SQLite file path or SQLAlchemy URL (default data/scheduler.db)")
    args = parser.parse_args(argv)
    return {key: value for key, value in vars(args).items() if value is not None}


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_CONFIG


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings(**parse_args(argv))
        tokens = TokenRegistry(settings.token_specs())
        check_exposure(settings.host, tokens)
    except ValidationError as exc:
        return fail(f"invalid configuration: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
    except (ValueError, OSError) as exc:
        return fail(str(exc))
    try:
        listener = bind_listener(settings.host, settings.port)
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        print(f"error: cannot serve on {where}: {exc.strerror or exc}; no task was started", file=sys.stderr)
        return EXIT_BIND
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    log = logging.getLogger("main")
    retention = Retention(
        days=settings.retention_days, per_task=settings.retention_per_task, every=settings.retention_interval
    )
    try:
        stores = open_stores(
            settings.database_url, retention=retention, schema_lock_timeout=settings.schema_lock_timeout
        )
    except StoreOpenError as exc:
        listener.close()
        return fail(str(exc))
    try:
        events = EventHub(buffer=settings.event_buffer)
        batch = BatchQueue.from_settings(settings) if settings.batch_example else None
        rocketry_app = create_scheduler(settings, stores, events=events, batch=batch)
        scheduler = rocketry_app.session.scheduler
        services = build_services(settings, rocketry_app, stores=stores, events=events)
        app = create_app(services, settings=settings, tokens=tokens, batch=batch)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            timeout_graceful_shutdown=3,
            # X-Forwarded-For/-Proto only from the proxies named in the settings: believed
            # from anyone (uvicorn trusts 127.0.0.1 by default), they would let any local
            # client write any address into the audit trail.
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=settings.trusted_proxies,
            # A WebSocket frame over the batch example's limit is refused (1009) before it
            # is buffered; no compression, whose inflating per read would hold the loop.
            ws_max_size=settings.batch_max_message_bytes,
            ws_per_message_deflate=False,
        )
        server = ControlServer(
            config, scheduler=scheduler, stop_timeout=settings.shutdown_timeout, on_stopping=events.close
        )
        # Tasks, conditions and modules live as long as the process: keep them out of the
        # garbage collector's full passes, which at thousands of tasks pause the event
        # loop for tens of milliseconds.
        gc.collect()
        gc.freeze()
        code = asyncio.run(run_service(server, scheduler, sockets=[listener]))
    finally:
        listener.close()
        stores.close()
    if code and not server.started:
        print(f"error: cannot serve on {settings.host}:{settings.port}; no task was started", file=sys.stderr)
    if scheduler.abandoned and any(
        not t.daemon for t in threading.enumerate() if t is not threading.main_thread()
    ):
        # Task threads that ignored the stop would keep the interpreter alive forever.
        log.error("Exiting without waiting for task threads: %s", ", ".join(scheduler.abandoned))
        logging.shutdown()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
