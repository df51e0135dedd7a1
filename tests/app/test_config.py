"""Settings from the environment: a bad LENET_* value is one clear line and status 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENET_")} | {variable: value}
    done = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {variable}={value!r}: ") and accepts in lines[0]
