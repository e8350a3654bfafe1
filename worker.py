"""The Celery app of the workers: ``celery -A worker worker``.

Workers read the service's settings (``SCHEDULER_DATABASE``, ``SCHEDULER_CELERY_BROKER``,
``SCHEDULER_TASK_PACKAGES``...) from the environment or ``.env``, as the service does, and
run the functions of ``execution: celery`` tasks.
"""

import sys
from pathlib import Path

# Task packages are found beside this file, as they are beside main.py.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import control  # noqa: E402, F401  (puts rocketry on pydantic.v1 before anything imports it)
from control.settings import Settings  # noqa: E402
from control.workers.app import make_app  # noqa: E402
from control.workers.execute import register  # noqa: E402

_settings = Settings()
app = make_app(_settings.celery_broker, _settings.celery_queue)
register(app, lambda: _settings)
