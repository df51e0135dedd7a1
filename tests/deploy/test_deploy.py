"""Container and cluster files, checked without a Docker engine: lint, config, schema, and the
image's own start command run directly on this machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.cpu.yml", "docker-compose.scale.yml"]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        pytest.skip(f"{name} is not installed here (.ci/run installs it)")
    return path


def instruction(name: str) -> list[str]:
    return re.findall(rf"^{name}\s+(.+?)(?<!\\)$", DOCKERFILE, re.MULTILINE | re.DOTALL)


def test_hadolint_passes():
    done = subprocess.run([tool("hadolint"), "Dockerfile"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_image_is_pinned_to_the_project_tensorflow():
    pin = next(
        d
        for d in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        if d.startswith("tensorflow")
    )
    image = re.search(r"^ARG TF_IMAGE=tensorflow/tensorflow:(\S+)-gpu$", DOCKERFILE, re.MULTILINE).group(1)
    assert pin == "tensorflow>=2.21,<2.22" and image.startswith("2.21.")
    assert "USER 10001" in DOCKERFILE and "HEALTHCHECK" in DOCKERFILE and "/readyz" in DOCKERFILE


@pytest.mark.parametrize("compose", [pytest.param(f, id=f) for f in COMPOSE_FILES])
@pytest.mark.parametrize("profile", [pytest.param([], id="default"), pytest.param(["--profile", "train"], id="train")])
def test_compose_config_is_valid(compose, profile):
    done = subprocess.run(
        [tool("docker-compose"), "-f", compose, *profile, "config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "LENET_ADMIN_TOKEN": "x"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    api = config["services"]["api"]
    assert "models:/models" in " ".join(str(v) for v in api["volumes"]) or any(
        isinstance(v, dict) and v.get("target") == "/models" for v in api["volumes"]
    )
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
    done = subprocess.run([tool("kubernetes-validate"), *manifests], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    deployment = yaml.safe_load((REPO_ROOT / "deploy/k8s/deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_a_rolling_update_loses_no_request_to_the_pod_it_stops():
    # An outside check: the port closes as SIGTERM arrives while endpoints still route to the pod (no preStop pause);
    # under load /readyz and /metrics took over 1 s, the default probe timeout, which the manifest did not raise.
    from app.config import Settings

    pod = yaml.safe_load((REPO_ROOT / "deploy/k8s/deployment.yaml").read_text())["spec"]["template"]["spec"]
    container = pod["containers"][0]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and float(command[1]) >= 3  # endpoints stop routing to it before the server stops
    drain = Settings.model_fields["graceful_shutdown_s"].default
    assert pod["terminationGracePeriodSeconds"] >= float(command[1]) + drain + 5  # the pause, the drain, then SIGKILL
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe].get("timeoutSeconds", 1) >= 3, probe


def test_the_mnist_that_make_mnist_writes_is_what_the_containers_read():
    """`make mnist` writes data/mnist.npz; every compose file mounts that folder where LENET_MNIST_PATH and the
    train service look, and the Kubernetes Job's init container writes the file its training reads."""
    target = re.search(r"fetch-mnist --to (\S+)", (REPO_ROOT / "Makefile").read_text()).group(1)
    folder, name = os.path.split(target)
    for compose in COMPOSE_FILES:
        services = yaml.safe_load((REPO_ROOT / compose).read_text())["services"]
        api, train = services["api"], services["train"]
        mount = next(v for v in api["volumes"] if v.endswith(":ro") and "MNIST_DIR" in v)
        source, inside = re.fullmatch(r"\$\{MNIST_DIR:-(.+)\}:(.+):ro", mount).groups()
        assert os.path.normpath(source) == os.path.normpath(folder), compose
        assert api["environment"]["LENET_MNIST_PATH"] == f"{inside}/{name}", compose
        assert mount in train["volumes"] and f"{inside}/{name}" in train["entrypoint"], compose
    job = yaml.safe_load((REPO_ROOT / "deploy/k8s/train-job.yaml").read_text())["spec"]["template"]["spec"]
    fetch = " ".join(job["initContainers"][0]["command"])
    data = job["containers"][0]["command"][job["containers"][0]["command"].index("--data") + 1]
    assert f"fetch-mnist --to {data}" in fetch


def test_the_grpc_port_is_exposed_everywhere_the_http_port_is():
    """LENET_GRPC_PORT (8001) in the image, both compose files that publish ports, nginx and Kubernetes."""
    assert re.search(r"^EXPOSE 8000 8001$", DOCKERFILE, re.MULTILINE) and "LENET_GRPC_PORT=8001" in DOCKERFILE
    for compose in ("docker-compose.yml", "docker-compose.cpu.yml"):
        assert "8001:8001" in yaml.safe_load((REPO_ROOT / compose).read_text())["services"]["api"]["ports"]
    scaled = yaml.safe_load((REPO_ROOT / "docker-compose.scale.yml").read_text())["services"]
    assert "8001" in scaled["api"]["expose"] and "8001:8001" in scaled["lb"]["ports"]
    assert "grpc_pass $grpc_api;" in (REPO_ROOT / "deploy/nginx.conf").read_text()
    deployment = yaml.safe_load((REPO_ROOT / "deploy/k8s/deployment.yaml").read_text())
    ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert {"name": "grpc", "containerPort": 8001} in ports
    service = yaml.safe_load((REPO_ROOT / "deploy/k8s/service.yaml").read_text())
    assert {"name": "grpc", "port": 8001, "targetPort": "grpc", "appProtocol": "kubernetes.io/h2c"} in service["spec"][
        "ports"
    ]
