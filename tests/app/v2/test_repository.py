"""The V2 model repository extension: the index, load and unload, their errors."""

from __future__ import annotations

import asyncio

import httpx
import jsonschema

from app.main import create_app
from tests.app.conftest import add_version, assert_v2_error, metric, served
from tests.app.v2.conftest import AUTH, assert_envelope, infer_body

INDEX_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name", "state", "reason"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "reason": {"type": "string"},
            "state": {"enum": ["UNKNOWN", "READY", "UNAVAILABLE", "LOADING", "UNLOADING"]},
        },
    },
}


async def index(http: httpx.AsyncClient, **request: object) -> list[dict[str, object]]:
    response = (
        await http.post("/v2/repository/index", json=request) if request else await http.post("/v2/repository/index")
    )  # tritonclient sends an empty body
    assert response.status_code == 200, response.text
    jsonschema.validate(response.json(), INDEX_SCHEMA)
    return response.json()


async def test_server_metadata_advertises_the_repository_extension(client):
    assert "model_repository" in (await client.get("/v2")).json()["extensions"]


async def test_the_index_lists_every_version_with_its_state_and_reason(admin_settings, loader):
    add_version(admin_settings.models_dir, "lenet5", 1, digit=1)
    add_version(admin_settings.models_dir, "lenet5", 2, digit=2)
    add_version(admin_settings.models_dir, "lenet5", 3, broken=True)
    add_version(admin_settings.models_dir, "other", 1, digit=4)
    (admin_settings.models_dir / "empty").mkdir()
    app = create_app(admin_settings, loader)
    async with served(app) as http:
        entries = {(e["name"], e.get("version")): e for e in await index(http)}
        assert entries[("lenet5", "2")]["state"] == "READY" and entries[("lenet5", "2")]["reason"] == ""
        assert entries[("lenet5", "1")]["state"] == "UNAVAILABLE"
        assert "not loaded" in entries[("lenet5", "1")]["reason"]
        assert entries[("lenet5", "3")]["state"] == "UNAVAILABLE"
        assert "smoke prediction failed" in entries[("lenet5", "3")]["reason"]
        assert entries[("other", "1")]["state"] == "READY"
        assert entries[("empty", None)] == {"name": "empty", "state": "UNAVAILABLE", "reason": "no versions"}

        # A pinned request loads version 1: it is ready too from then on.
        assert (await http.post("/v2/models/lenet5/versions/1/infer", json=infer_body())).status_code == 200
        ready = await index(http, ready=True)
        assert sorted((e["name"], e["version"]) for e in ready) == [
            ("lenet5", "1"),
            ("lenet5", "2"),
            ("other", "1"),
        ]
        assert all(e["state"] == "READY" for e in ready)


async def test_unload_stops_serving_until_load_and_the_poller_leaves_it_alone(client, admin_settings):
    http = client
    assert_v2_error(
        await http.post("/v2/repository/models/lenet5/unload", headers={"Authorization": "Bearer no"}),
        401,
        "admin token",
    )
    response = await http.post(
        "/v2/repository/models/lenet5/unload", headers=AUTH, json={"parameters": {"unload_dependents": False}}
    )  # what tritonclient sends
    assert response.status_code == 200, response.text
    assert [(e["version"], e["state"], e["reason"]) for e in await index(http)] == [("1", "UNAVAILABLE", "unloaded")]
    # the default model: this replica is out of rotation, and says why and what brings it back (it said "not loaded
    # yet", as if it would come back by itself: an outside check)
    readiness = await http.get("/readyz")
    assert readiness.status_code == 503 and "lenet5' is unloaded" in readiness.json()["error"]["message"]
    assert "POST /v2/repository/models/lenet5/load" in readiness.json()["error"]["message"]
    assert_v2_error(await http.get("/v2/health/ready"), 503, "lenet5' is unloaded; an admin can load it")
    assert 'lenet_model_version{model="lenet5"}' not in (await http.get("/metrics")).text
    assert_v2_error(await http.post("/v2/models/lenet5/versions/1/infer", json=infer_body()), 503, "unloaded")
    assert_envelope(await http.post("/predict", json={"instances": [[0] * 784]}), 503, "model_not_ready")

    # A new version on disk does not bring it back: only a load does.
    add_version(admin_settings.models_dir, "lenet5", 2, digit=2)
    await asyncio.sleep(5 * admin_settings.poll_interval_s)
    assert (await http.get("/v2/models/lenet5/ready")).status_code == 503
    response = await http.post("/v2/repository/models/lenet5/load", headers=AUTH, content=b"")
    assert response.status_code == 200, response.text
    answer = await http.post("/v2/models/lenet5/infer", json=infer_body())
    assert answer.status_code == 200 and answer.json()["model_version"] == "2"  # its highest version, at once
    assert (await http.get("/readyz")).status_code == 200
    assert metric((await http.get("/metrics")).text, 'lenet_model_version{model="lenet5"}') == 2
    assert (await http.post("/v2/repository/models/lenet5/load", headers=AUTH)).status_code == 200  # idempotent


async def test_load_of_a_model_whose_every_version_is_broken_says_why(client, admin_settings):
    add_version(admin_settings.models_dir, "broken", 1, broken=True)
    assert_v2_error(
        await client.post("/v2/repository/models/broken/load", headers=AUTH), 404, "smoke prediction failed"
    )
    assert_v2_error(await client.post("/v2/repository/models/..%2Fjobs/load", headers=AUTH), 404)
    assert_v2_error(
        await client.post(
            "/v2/repository/models/lenet5/unload", headers=AUTH, json={"parameters": {"unload_dependents": "yes"}}
        ),
        400,
        "unload_dependents",
    )
