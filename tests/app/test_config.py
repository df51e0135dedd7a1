"""Settings from the environment: a bad LENET_* value is one clear line and status 2, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def start_app(settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m app` with these LENET_* variables and no others, as a user starts it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENET_")} | settings
    return subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize(
    "variable, value, accepts",
    [
        pytest.param("LENET_PORT", "86o1", "valid integer", id="port-typo"),
        pytest.param("LENET_PORT", "70000", "less than or equal to 65535", id="port-range"),
        pytest.param("LENET_MAX_BATCH_SIZE", "0", "greater than or equal to 1", id="batch-size"),
        pytest.param("LENET_LOOP", "tokio", "'asyncio' or 'uvloop'", id="loop"),
        pytest.param("LENET_LOG_LEVEL", "loud", "'debug'", id="log-level"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(variable: str, value: str, accepts: str) -> None:
    done = start_app({variable: value})
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {variable}={value!r}: ") and accepts in lines[0]


@pytest.mark.parametrize("variable", ["LENET_PORT", "LENET_GRPC_PORT"])
def test_a_port_in_use_is_one_line_naming_the_variable(variable: str) -> None:
    """A second server started with `make serve PORT=9000` still took gRPC's 8001, held by the first: it loaded
    every model, then ended with a traceback in a log line. Now either port in use is one line, before anything
    loads."""
    from tests.e2e.conftest import free_port

    ports = {"LENET_PORT": free_port(), "LENET_GRPC_PORT": free_port()}
    with socket.socket() as held:
        held.bind(("127.0.0.1", ports[variable]))
        held.listen()
        done = start_app({"LENET_HOST": "127.0.0.1", **{name: str(port) for name, port in ports.items()}})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {variable}={ports[variable]}: 127.0.0.1:{ports[variable]} is in use")
