"""Turns the ``database`` setting (a file path or a SQLAlchemy URL) into a SQLAlchemy URL."""

from pathlib import Path

from sqlalchemy.engine import make_url


def database_url(value: str, *, base: Path) -> str:
    """A value with a scheme is a URL; anything else is the path of a SQLite file."""
    if "://" not in value:
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = base / path
        return f"sqlite:///{path}"
    url = make_url(value)
    # Plain postgresql:// would pick psycopg2; the pinned driver is psycopg 3.
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """The URL with its password hidden, for logs and the API."""
    return make_url(url).render_as_string(hide_password=True)
