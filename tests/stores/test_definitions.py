"""The definition store contract, over every backend: definitions and their versions saved
together, versions paged and filtered, session parameters; what is read back is storable."""

from control.stores.base import StoredDefinition, Version, VersionQuery

import pytest

from tests.utils.stores import opened


def version(name, action="edit", definition=None, **fields) -> Version:
    values = {"actor": "ops", "client": "127.0.0.1", "changes": {"priority": [0, 1]}, "reason": None}
    values |= {"origin": "runtime"} | fields
    return Version(task_name=name, action=action, definition=definition, **values)


@pytest.fixture
def definitions(store_url):
    with opened(store_url) as stores:
        yield stores.definitions


def test_a_definition_and_its_version_are_saved_together(definitions):
    made = StoredDefinition(
        "made", "runtime", {"name": "made", "func": "tasks.x:y", "parameters": {"n": [1, 2]}}
    )
    saved = definitions.save(made, version("made", "create", made.fields), name="made")
    assert saved.id is not None and saved.created > 0
    edit = StoredDefinition("quick", "code", {"priority": 3})
    definitions.save(edit, version("quick", definition=edit.fields, origin="code"), name="quick")
    stored, parameters = definitions.load()
    assert stored == [edit, made] or stored == [made, edit]
    assert parameters == {}
    assert definitions.version("made", saved.id) == saved
    assert definitions.version("quick", saved.id) is None


def test_a_deletion_removes_the_definition_and_keeps_the_history(definitions):
    made = StoredDefinition("made", "runtime", {"name": "made"})
    definitions.save(made, version("made", "create", made.fields), name="made")
    definitions.save(None, version("made", "delete", None), name="made")
    assert definitions.load()[0] == []
    versions, _ = definitions.versions("made", VersionQuery())
    assert [v.action for v in versions] == ["delete", "create"]


def test_versions_page_newest_first_and_filter_by_time(definitions):
    saved = [definitions.save(None, version("t", reason=str(i)), name="t") for i in range(7)]
    seen, cursor = [], None
    while True:
        page, cursor = definitions.versions("t", VersionQuery(limit=3, cursor=cursor))
        seen += page
        if cursor is None:
            break
    assert [v.id for v in seen] == [v.id for v in reversed(saved)]
    middle = saved[3].created
    later, _ = definitions.versions("t", VersionQuery(since=middle))
    assert all(v.created >= middle for v in later) and saved[3].id in {v.id for v in later}
    earlier, _ = definitions.versions("t", VersionQuery(until=middle))
    assert all(v.created <= middle for v in earlier)


def test_session_parameters_are_set_replaced_and_deleted(definitions):
    definitions.set_parameter("region", {"name": "eu", "zones": [1, 2]})
    definitions.set_parameter("region", "us")
    definitions.set_parameter("rows", 5)
    assert definitions.load()[1] == {"region": "us", "rows": 5}
    assert definitions.delete_parameter("rows") is True
    assert definitions.delete_parameter("rows") is False
    assert definitions.load()[1] == {"region": "us"}
