"""What is shipped runs: the wheel built as the Dockerfile builds it, installed where the checkout is not
importable, started with the image's CMD, ENV and HEALTHCHECK. The Dockerfile is read, not restated, so
this test follows it when it changes. (The image itself needs a Docker engine, which CI does not have.)"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import BUNDLED_MODELS, FIXTURE_MNIST, REPO_ROOT
from tests.e2e.conftest import free_port

DOCKERFILE = REPO_ROOT / "Dockerfile"
TOKEN = "wheel-test-token"


@dataclass
class Stage:
    workdir: str = "/"
    copies: list[list[str]] = field(default_factory=list)  # [sources..., destination], COPY lines without --from
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)


def dockerfile_stages(text: str) -> list[Stage]:
    """The parts of each stage this test uses; continuation lines joined, comments dropped."""
    logical = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    stages: list[Stage] = []
    for line in logical.splitlines():
        words = line.split(maxsplit=1)
        if not words:
            continue
        instruction, rest = words[0].upper(), (words[1] if len(words) > 1 else "")
        if instruction == "FROM":
            stages.append(Stage())
        elif instruction == "WORKDIR":
            stages[-1].workdir = rest.strip()
        elif instruction == "COPY" and "--from" not in rest:
            stages[-1].copies.append([w for w in shlex.split(rest) if not w.startswith("--")])
        elif instruction == "ENV":
            stages[-1].env.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
        elif instruction == "CMD":
            stages[-1].cmd = json.loads(rest)
        elif instruction == "HEALTHCHECK":
            stages[-1].healthcheck = json.loads(rest.split("CMD", 1)[1])
    return stages


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore matching: a pattern is anchored at the context root (`jobs` is the top-level
    folder only, unlike .gitignore), `*` and `?` stay within one path segment, `**` spans any number."""
    out = ""
    for piece in re.split(r"(\*\*/?|\*|\?)", pattern.strip("/")):
        out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(piece, re.escape(piece))
    return re.compile(out)


def dockerignored(relative: str, patterns: list[str]) -> bool:
    """Whether the path or a folder above it is excluded (excluding a folder excludes what it holds)."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(dockerignore_regex(p).fullmatch(prefix) for p in patterns for prefix in prefixes)


@pytest.mark.parametrize(
    "path, ignored",
    [
        pytest.param("jobs", True, id="top-level-folder"),
        pytest.param("jobs/x/job.json", True, id="inside-an-ignored-folder"),
        pytest.param("app/jobs/supervisor.py", False, id="same-name-nested-is-kept"),
        pytest.param("app/__pycache__/x.pyc", True, id="double-star"),
        pytest.param("models/lenet5/.tmp-abc/saved_model.pb", True, id="anchored-glob"),
        pytest.param("app/main.py", False, id="source"),
    ],
)
def test_dockerignore_matching_follows_docker(path: str, ignored: bool) -> None:
    patterns = ["jobs", "**/__pycache__", "models/*/.tmp-*", "*.pyc"]
    assert dockerignored(path, patterns) is ignored


def build_context(stage: Stage, into: Path) -> Path:
    """The build stage's tree: only what its COPY lines copy (less .dockerignore), at their destinations."""
    ignore = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    workdir = into / stage.workdir.lstrip("/")
    for *sources, destination in stage.copies:
        target = workdir / destination
        for source in sources:
            origin = REPO_ROOT / source
            end = target / origin.name if destination.endswith("/") or len(sources) > 1 else target
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    end,
                    ignore=lambda folder, names: [
                        n for n in names if dockerignored(str((Path(folder) / n).relative_to(REPO_ROOT)), ignore)
                    ],
                )
            else:
                end.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, end)
    return workdir


def rerooted(value: str, root: Path) -> str:
    """An absolute path of the image, moved under `root` (the test's stand-in for the container's /)."""
    return str(root / value.lstrip("/")) if value.startswith("/") else value


@dataclass
class Installed:
    url: str
    env: dict[str, str]
    cwd: Path
    healthcheck: list[str]
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("image")
    build, runtime = dockerfile_stages(DOCKERFILE.read_text())[0], dockerfile_stages(DOCKERFILE.read_text())[-1]
    source = build_context(build, root / "build")
    wheels = root / "wheels"
    # As the build stage's `pip wheel`, offline: the setuptools of the test environment, no index.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(wheels),
            ".",
        ],
        cwd=source,
        check=True,
    )
    wheel = next(wheels.glob("lenet_serve-*.whl"))

    # A fresh environment: the third-party packages stand in for the base image's (TensorFlow and the
    # service's dependencies), reached through a .pth line, which does not run the checkout's editable hook.
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "base_image.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--ignore-installed",
            str(wheel),
        ],
        check=True,
    )

    shutil.copytree(BUNDLED_MODELS, root / "models")  # the image's `COPY models /models`
    port = free_port()
    image_env = {key: rerooted(value, root) for key, value in runtime.env.items()}
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(root / "home"),
        **image_env,
        "LENET_HOST": "127.0.0.1",
        "LENET_PORT": str(port),
        "LENET_GRPC_PORT": str(free_port()),
        "LENET_POLL_INTERVAL_S": "0.5",
        "LENET_ADMIN_TOKEN": TOKEN,
        "LENET_MNIST_PATH": str(FIXTURE_MNIST),
    }
    cwd = Path(rerooted(runtime.workdir, root))
    cwd.mkdir(parents=True, exist_ok=True)
    Path(image_env["LENET_JOBS_DIR"]).mkdir(parents=True, exist_ok=True)
    log = root / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            runtime.cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    healthcheck = [re.sub(r"127\.0\.0\.1:8000\b", f"127.0.0.1:{port}", word) for word in runtime.healthcheck]
    yield Installed(f"http://127.0.0.1:{port}", env, cwd, healthcheck, process, log)
    if process.poll() is None:
        process.kill()
        process.wait()


def test_the_image_listens_where_it_says() -> None:
    runtime = dockerfile_stages(DOCKERFILE.read_text())[-1]
    exposed = re.search(r"^EXPOSE\s+(\d+)", DOCKERFILE.read_text(), re.MULTILINE).group(1)
    assert runtime.env["LENET_PORT"] == exposed and f"127.0.0.1:{exposed}/readyz" in " ".join(runtime.healthcheck)


def test_the_installed_package_is_not_the_checkout(installed: Installed) -> None:
    where = subprocess.run(
        ["python", "-c", "import app, training; print(app.__file__); print(training.__file__)"],
        cwd=installed.cwd,
        env=installed.env,
        capture_output=True,
        text=True,
        check=True,
    )
    for path in where.stdout.split():
        assert Path(path).is_relative_to(installed.cwd.parent.parent / "venv"), path
        assert not Path(path).is_relative_to(REPO_ROOT), path


def wait_healthy(installed: Installed) -> None:
    """Run the image's HEALTHCHECK command until it passes, as Docker does during the start period."""
    deadline = time.monotonic() + 120  # the image's start period is 90 s
    while (
        result := subprocess.run(
            installed.healthcheck, cwd=installed.cwd, env=installed.env, capture_output=True, check=False
        )
    ).returncode != 0:
        assert installed.process.poll() is None, f"the server exited:\n{installed.log.read_text()}"
        assert time.monotonic() < deadline, f"healthcheck still failing:\n{result.stderr.decode()}"
        time.sleep(0.5)


def test_the_healthcheck_passes(installed: Installed) -> None:
    wait_healthy(installed)
    assert httpx.get(installed.url + "/readyz").json()["status"] == "ready"


@pytest.mark.parametrize(
    "path, marker",
    [
        pytest.param("/", "<canvas", id="page"),
        pytest.param("/docs", "swagger", id="docs"),
        pytest.param("/redoc", "redoc", id="redoc"),
    ],
)
def test_pages_and_their_assets_are_served(installed: Installed, path: str, marker: str) -> None:
    wait_healthy(installed)
    page = httpx.get(installed.url + path)
    assert page.status_code == 200 and marker in page.text.lower()
    # Every asset the page loads comes from this server (it must work offline) and from the installed package.
    assets = [a for a in re.findall(r"""(?:src|href)\s*[=:]\s*["']([^"'#?]+)""", page.text) if a != "data:,"]
    assert assets
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), f"{path} loads {asset} from elsewhere"
        assert httpx.get(installed.url + asset).status_code == 200, asset


def test_the_installed_package_serves_grpc(installed: Installed) -> None:
    """The wheel carries app.grpc_v2, and the stubs it loads work: V2 health, metadata and an infer over gRPC."""
    import numpy as np
    import tritonclient.grpc as triton_grpc

    wait_healthy(installed)
    with triton_grpc.InferenceServerClient(f"127.0.0.1:{installed.env['LENET_GRPC_PORT']}") as client:
        assert client.is_server_ready() and client.is_model_ready("lenet5")
        image = triton_grpc.InferInput("image", [1, 784], "UINT8")
        image.set_data_from_numpy(np.zeros((1, 784), np.uint8))
        assert client.infer("lenet5", [image]).as_numpy("probabilities").shape == (1, 10)


def test_the_readme_curl_example_answers(installed: Installed) -> None:
    wait_healthy(installed)
    example = re.search(
        r"^curl -F image=@\S+ http://127\.0\.0\.1:8000/predict$", (REPO_ROOT / "README.md").read_text(), re.MULTILINE
    )
    assert example, "the README's first curl example is gone"
    command = shlex.split(example.group(0).replace("127.0.0.1:8000", installed.url.removeprefix("http://")))
    answer = json.loads(
        subprocess.run(
            command + ["--silent", "--show-error", "--fail-with-body"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert answer["predictions"][0]["digit"] in range(10)


def test_the_readme_read_example_answers(installed: Installed) -> None:
    """POST /read from the wheel: app.imaging's segmentation and the bundled reading model."""
    wait_healthy(installed)
    example = re.search(
        r"^curl -F image=@\S+ http://127\.0\.0\.1:8000/read$", (REPO_ROOT / "README.md").read_text(), re.MULTILINE
    )
    assert example, "the README's /read curl example is gone"
    command = shlex.split(example.group(0).replace("127.0.0.1:8000", installed.url.removeprefix("http://")))
    answer = json.loads(
        subprocess.run(
            command + ["--silent", "--show-error", "--fail-with-body"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert answer["model"] == {"name": "lenet5-read", "version": 6}
    assert answer["readings"][0]["text"] == "4021"


def test_a_training_job_runs_the_installed_training_package(installed: Installed) -> None:
    wait_healthy(installed)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    accepted = httpx.post(
        installed.url + "/train",
        headers=headers,
        json={"epochs": 1, "train_limit": 500, "promote": "never", "model": "wheel-test"},
    )
    assert accepted.status_code == 202, accepted.text
    status_url = accepted.json()["status_url"]
    deadline = time.monotonic() + 300
    while (job := httpx.get(status_url, headers=headers).json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["state"] == "succeeded", job


def test_sigterm_drains_and_stops_the_server(installed: Installed) -> None:
    """Last in this module: docker stop's SIGTERM; uvicorn drains, shuts the app down and exits."""
    wait_healthy(installed)
    installed.process.terminate()
    assert installed.process.wait(30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in installed.log.read_text()
