"""Container and cluster files, checked without a Docker engine: lint, config, schema, and the
image's own start command run directly on this machine."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import free_port

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.cpu.yml", "docker-compose.scale.yml"]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        pytest.skip(f"{name} is not installed here (.ci/run installs it)")
    return path


def instruction(name: str) -> list[str]:
    return re.findall(rf"^{name}\s+(.+?)(?<!\\)$", DOCKERFILE, re.M | re.S)


def test_hadolint_passes():
    done = subprocess.run([tool("hadolint"), "Dockerfile"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_image_is_pinned_to_the_project_tensorflow():
    pin = next(d for d in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
               if d.startswith("tensorflow"))
    image = re.search(r"^ARG TF_IMAGE=tensorflow/tensorflow:(\S+)-gpu$", DOCKERFILE, re.M).group(1)
    assert pin == "tensorflow>=2.21,<2.22" and image.startswith("2.21.")
    assert "USER 10001" in DOCKERFILE and "HEALTHCHECK" in DOCKERFILE and "/readyz" in DOCKERFILE


@pytest.mark.parametrize("compose", [pytest.param(f, id=f) for f in COMPOSE_FILES])
@pytest.mark.parametrize("profile", [pytest.param([], id="default"), pytest.param(["--profile", "train"], id="train")])
def test_compose_config_is_valid(compose, profile):
    done = subprocess.run([tool("docker-compose"), "-f", compose, *profile, "config"], cwd=REPO_ROOT,
                          capture_output=True, text=True, env={**os.environ, "LENET_ADMIN_TOKEN": "x"})
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    api = config["services"]["api"]
    assert "models:/models" in " ".join(str(v) for v in api["volumes"]) or any(
        isinstance(v, dict) and v.get("target") == "/models" for v in api["volumes"])
    assert api["healthcheck"]["test"][-1].count("/readyz") == 1
    if profile:
        assert "train" in config["services"]


def test_gpu_compose_reserves_a_gpu_and_the_cpu_one_does_not():
    gpu = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]["api"]
    cpu = yaml.safe_load((REPO_ROOT / "docker-compose.cpu.yml").read_text())["services"]["api"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert "reservations" not in cpu["deploy"]["resources"]


def test_kubernetes_manifests_validate():
    manifests = sorted(str(p) for p in (REPO_ROOT / "deploy" / "k8s").glob("*.yaml"))
    done = subprocess.run([tool("kubernetes-validate"), *manifests], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    deployment = yaml.safe_load((REPO_ROOT / "deploy/k8s/deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_the_image_start_command_serves_readyz(tmp_path):
    """Run the Dockerfile's CMD (and its HEALTHCHECK) here, with the image's environment."""
    cmd = json.loads(instruction("CMD")[0])
    port = free_port()
    cmd = [sys.executable if part == "python" else part for part in cmd]
    env = dict(re.findall(r"(LENET_\w+|TF_\w+|PYTHON\w+)=(\S+)", instruction("ENV")[0]))
    assert env["LENET_PORT"] == "8000"  # what EXPOSE, the health checks and the compose files expect
    env.update(LENET_MODELS_DIR=str(REPO_ROOT / "models"), LENET_JOBS_DIR=str(tmp_path / "jobs"),
               LENET_HOST="127.0.0.1", LENET_PORT=str(port))
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log.read_text()
            time.sleep(0.3)
        else:
            pytest.fail(f"/readyz never answered 200:\n{log.read_text()}")
        check = json.loads(re.search(r"CMD (\[.*\])", instruction("HEALTHCHECK")[0], re.S).group(1))
        check = [sys.executable if p == "python" else p.replace(":8000", f":{port}") for p in check]
        assert subprocess.run(check, timeout=30).returncode == 0
    finally:
        server.terminate()  # SIGTERM, as docker stop sends: uvicorn drains, shuts down, re-raises the signal
        assert server.wait(30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log.read_text()
