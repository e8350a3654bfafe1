"""Which way imports go (docs/architecture.md): routes speak only to services and schemas, and
only the store modules know SQLAlchemy and Alembic. Checked on the source, so a new import
cannot slip in."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRODUCT = [REPO / "main.py", REPO / "scheduler.py", REPO / "api.py", REPO / "worker.py"]
PRODUCT += list((REPO / "control").rglob("*.py"))
PRODUCT += list((REPO / "tasks").rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def within(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


@pytest.mark.parametrize("path", sorted((REPO / "control" / "routes").glob("*.py")), ids=lambda p: p.name)
def test_routes_import_neither_rocketry_nor_the_engine_nor_stores_nor_each_other(path):
    forbidden = [
        name
        for name in imported(path)
        if within(name, "rocketry", "control.engine", "control.stores", "control.routes")
    ]
    assert not forbidden, f"{path.relative_to(REPO)} imports {forbidden}"


@pytest.mark.parametrize("path", sorted(PRODUCT), ids=lambda p: str(p.relative_to(REPO)))
def test_only_the_store_modules_import_sqlalchemy_or_alembic(path):
    if within(".".join(path.relative_to(REPO).with_suffix("").parts), "control.stores"):
        return
    forbidden = [name for name in imported(path) if within(name, "sqlalchemy", "alembic")]
    assert not forbidden, f"{path.relative_to(REPO)} imports {forbidden}"


@pytest.mark.parametrize("path", sorted(PRODUCT), ids=lambda p: str(p.relative_to(REPO)))
def test_only_the_workers_package_imports_celery(path):
    """The engine sends runs through a Dispatcher it is given; Celery stays in control/workers."""
    if within(".".join(path.relative_to(REPO).with_suffix("").parts), "control.workers"):
        return
    forbidden = [name for name in imported(path) if within(name, "celery", "kombu")]
    assert not forbidden, f"{path.relative_to(REPO)} imports {forbidden}"


@pytest.mark.parametrize("path", sorted((REPO / "control" / "cli").glob("*.py")), ids=lambda p: p.name)
def test_the_command_line_is_only_a_client_of_the_api(path):
    """It reaches the service over HTTP alone, so it runs wherever the API can be reached."""
    names = imported(path)
    forbidden = [name for name in names if within(name, "control") and not within(name, "control.cli")]
    assert not forbidden, f"{path.relative_to(REPO)} imports {forbidden}"


def test_only_deps_reads_the_app_state():
    readers = [
        path.relative_to(REPO)
        for path in (REPO / "control").rglob("*.py")
        if "app.state" in path.read_text() and path.name != "deps.py"
    ]
    assert readers == [], readers


def test_the_rule_sees_a_forbidden_import(tmp_path):
    route = tmp_path / "route.py"
    route.write_text("def f():\n    from control.stores.sql import engine\n")
    assert within("control.stores.sql", "control.stores") and "control.stores.sql" in imported(route)
