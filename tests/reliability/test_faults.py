"""Faults against the real server: stalled uploads, idle connections, broken or vanishing versions.
Each time the service keeps serving the last good version."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import time

import httpx

from tests.conftest import REPO_ROOT, wait_until

PNG = (REPO_ROOT / "examples" / "digit.png").read_bytes()


def predict(server) -> httpx.Response:
    return httpx.post(f"{server.url}/predict", files={"image": ("d.png", PNG, "image/png")}, timeout=30)


def connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_answer(sock: socket.socket) -> tuple[http.client.HTTPResponse, bytes]:
    """The whole answer on a raw socket, however its head and body are segmented."""
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    return answer, answer.read()


def test_stalled_upload_is_timed_out_and_its_slot_freed(server):
    sock = connect(server)
    sock.sendall(
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100000\r\n\r\n{"instances": ['
    )  # ...and nothing more
    started = time.monotonic()
    sock.settimeout(15)
    answer, body = read_answer(sock)
    waited = time.monotonic() - started
    sock.close()
    assert answer.status == 408 and b'"request_timeout"' in body
    assert waited < 5  # LENET_BODY_TIMEOUT_S=1 in this server
    assert predict(server).status_code == 200


def test_idle_keep_alive_connection_is_closed_after_its_timeout(server):
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer, _ = read_answer(sock)
    assert answer.status == 200 and not answer.will_close
    idle_from = time.monotonic()
    assert sock.recv(1) == b""  # the server closed it (settimeout(10) in connect)
    assert 2.5 < time.monotonic() - idle_from < 5  # LENET_KEEP_ALIVE_S=3 in this server
    sock.close()


def test_many_idle_connections_do_not_block_service(server):
    idle = [connect(server) for _ in range(300)]
    try:
        started = time.monotonic()
        assert predict(server).status_code == 200
        assert time.monotonic() - started < 2
    finally:
        for sock in idle:
            sock.close()
    assert httpx.get(f"{server.url}/readyz").status_code == 200


def test_request_ids_and_structured_logs(server):
    response = httpx.post(
        f"{server.url}/predict", content=b"x", headers={"content-type": "text/plain", "X-Request-ID": "probe-123"}
    )
    assert response.status_code == 415 and response.headers["x-request-id"] == "probe-123"
    ours = predict(server).headers["x-request-id"]
    assert ours and ours != "probe-123"
    lines = server.log().splitlines()  # stdout and stderr: every line JSON, uvicorn's too
    assert lines and all(json.loads(line)["logger"].startswith(("lenet", "uvicorn")) for line in lines)


def lenet5_states(server) -> dict[int, str]:
    """Version states of lenet5, by name: other tests on this server add models (test_bad_inputs' "broken")."""
    models = {m["name"]: m for m in httpx.get(f"{server.url}/models").json()["models"]}
    return {v["version"]: v["state"] for v in models["lenet5"]["versions"]}


def wait_state(server, version: int, state: str, timeout: float = 30) -> None:
    wait_until(
        lambda: lenet5_states(server).get(version) == state,
        timeout,
        lambda: f"version {version} never became {state}: {lenet5_states(server)}\n{server.log()[-2000:]}",
    )


def test_half_written_and_corrupt_versions_are_refused(server):
    model_dir = server.models_dir / "lenet5"
    half = model_dir / "7"
    half.mkdir()
    (half / "saved_model.pb").write_bytes((model_dir / "1" / "saved_model.pb").read_bytes())  # no variables/
    wait_state(server, 7, "refused")
    r = predict(server)
    assert r.status_code == 200 and r.json()["model"]["version"] == 1
    shutil.rmtree(half)


def test_version_removed_while_serving_falls_back(server):
    model_dir = server.models_dir / "lenet5"
    staging = model_dir / ".tmp-copy"
    shutil.copytree(model_dir / "1", staging)
    staging.rename(model_dir / "2")
    wait_state(server, 2, "serving")
    answers = []
    shutil.rmtree(model_dir / "2")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = predict(server)
        answers.append(r.status_code)
        if r.json()["model"]["version"] == 1:
            break
    assert set(answers) == {200} and r.json()["model"]["version"] == 1
