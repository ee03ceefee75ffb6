"""The local schema registry helper (deploy/registry/local_registry.py) against real Apicurio.

The registry runs in its own tmp dir on a free port, so this never touches a
developer's registry in .local/registry.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.integration.conftest import load_local_registry

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SCHEMA = {
    "type": "record",
    "name": "Article",
    "namespace": "wirenews.test",
    "fields": [{"name": "id", "type": "string"}, {"name": "words", "type": "int"}],
}
# Loopback only: never go through an http_proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def lr() -> ModuleType:
    module = load_local_registry()
    module.ensure_app()  # first run downloads; keeps that time out of start-up timings
    return module


@pytest.fixture
def state_dir(lr: ModuleType, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "registry"
    yield path
    lr.stop(path)  # whatever the test did, leave no registry behind


def _call(method: str, url: str, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback http
    request.add_header("Accept", "application/vnd.schemaregistry.v1+json")
    if data is not None:
        request.add_header("Content-Type", "application/vnd.schemaregistry.v1+json")
    with OPENER.open(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_register_fetch_and_reregister(lr: ModuleType, state_dir: Path) -> None:
    url = lr.start(state_dir=state_dir)
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/apis/ccompat/v7")
    assert lr.status(state_dir) == url

    schema_text = json.dumps(SCHEMA)
    registered = _call("POST", f"{url}/subjects/t-value/versions", {"schema": schema_text})
    assert isinstance(registered, dict)
    schema_id = registered["id"]
    assert isinstance(schema_id, int)

    fetched = _call("GET", f"{url}/schemas/ids/{schema_id}")
    assert isinstance(fetched, dict)
    assert json.loads(fetched["schema"]) == SCHEMA

    again = _call("POST", f"{url}/subjects/t-value/versions", {"schema": schema_text})
    assert again == {"id": schema_id}  # same schema, same id
    assert _call("GET", f"{url}/subjects") == ["t-value"]

    pid = (state_dir / "registry.pid").read_text()
    assert lr.start(state_dir=state_dir) == url  # starting twice reuses the registry
    assert (state_dir / "registry.pid").read_text() == pid

    assert lr.stop(state_dir) is True
    assert lr.status(state_dir) is None
    assert not (state_dir / "registry.pid").exists()
    assert lr.stop(state_dir) is False  # harmless when not running
