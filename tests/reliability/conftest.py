from __future__ import annotations

import shutil

import pytest

from tests.conftest import BUNDLED_MODELS
from tests.e2e.conftest import start_server, stop_server

ADMIN_TOKEN = "reliability-admin-token"
LIMITS = {
    "LENET_MAX_BODY_BYTES": str(1024 * 1024),
    "LENET_MAX_INSTANCES": "64",
    "LENET_BODY_TIMEOUT_S": "1",
    "LENET_KEEP_ALIVE_S": "3",
    "LENET_ADMIN_TOKEN": ADMIN_TOKEN,
}


@pytest.fixture(scope="package")
def server(tmp_path_factory):
    """The real server with small limits (1 MiB bodies, 64 instances, 1 s to send a body,
    idle connections closed after 3 s)."""
    root = tmp_path_factory.mktemp("reliability")
    shutil.copytree(BUNDLED_MODELS / "lenet5" / "1", root / "models" / "lenet5" / "1")
    server = start_server(root / "models", root / "server.log", **LIMITS)
    yield server
    stop_server(server)
    assert ADMIN_TOKEN not in server.log()
