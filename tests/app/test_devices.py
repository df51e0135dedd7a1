"""`python -m app.devices`: the device check, on this host and against a device that answers differently."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from app import devices
from tests.conftest import BUNDLED_MODELS, REPO_ROOT

FAKE_GPU = "/device:GPU:7"
ROW = re.compile(r"^(/device:\S+)\s+(\d+)\s+[\d,]+\s+\S+\s+\d+/\d+\s+(ok|DISAGREES)$", re.MULTILINE)


def rows(output: str) -> dict[str, dict[int, str]]:
    """{device: {batch size: verdict}} from the printed table."""
    table: dict[str, dict[int, str]] = {}
    for device, batch, verdict in ROW.findall(output):
        table.setdefault(device, {})[int(batch)] = verdict
    return table


def test_check_on_this_host_agrees():
    from app.model import logical_devices

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.devices",
            "--models-dir",
            str(BUNDLED_MODELS),
            "--model",
            "lenet5",
            "--version",
            "1",
            "--seconds",
            "0.05",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "/physical_device:CPU:0" in done.stdout
    assert "model lenet5 version 1" in done.stdout
    # Every CPU and GPU TensorFlow sees here (whatever this host has) is checked at every batch size.
    expected = {d.name for d in logical_devices() if d.kind in ("CPU", "GPU")}
    assert "/device:CPU:0" in expected
    assert rows(done.stdout) == {device: {1: "ok", 64: "ok", 256: "ok"} for device in expected}
    assert "verdict: AGREE" in done.stdout


@pytest.fixture
def fake_gpu(monkeypatch):
    """The CPU plus a fake GPU whose model is the real one on the CPU with its answers bent by `bend`."""
    from app import model

    bend = {"fn": lambda probabilities: probabilities}

    class BentOnFakeGpu(model.SavedModelDigits):
        def __init__(self, path, device="/CPU:0"):
            super().__init__(path, "/CPU:0")
            self.bent = device == FAKE_GPU  # set after the smoke test, which must see true probabilities

        def predict(self, batch: np.ndarray) -> np.ndarray:
            out = super().predict(batch)
            return bend["fn"](out) if getattr(self, "bent", False) else out

    monkeypatch.setattr(model, "SavedModelDigits", BentOnFakeGpu)
    monkeypatch.setattr(
        model,
        "logical_devices",
        lambda: [model.DeviceInfo("/device:CPU:0", "CPU", {}), model.DeviceInfo(FAKE_GPU, "GPU", {})],
    )
    return bend


def shift(delta: float):
    def bent(p: np.ndarray) -> np.ndarray:
        p = p.copy()
        p[:, 0] += delta  # sums stay 1, argmax of the clear probe images stays put
        p[:, 1] -= delta
        return p

    return bent


@pytest.mark.parametrize(
    ("bend", "tolerance", "code", "gpu_verdict"),
    [
        pytest.param(shift(1e-5), "1e-3", 0, "ok", id="within-tolerance"),
        pytest.param(shift(1e-2), "1e-3", 1, "DISAGREES", id="probabilities-off"),
        pytest.param(lambda p: p[:, ::-1].copy(), "1.0", 1, "DISAGREES", id="labels-differ"),
    ],
)
def test_a_device_that_answers_differently_fails(fake_gpu, capsys, bend, tolerance, code, gpu_verdict):
    fake_gpu["fn"] = bend
    exit_code = devices.main(
        [
            "--models-dir",
            str(BUNDLED_MODELS),
            "--model",
            "lenet5",
            "--version",
            "1",
            "--seconds",
            "0.01",
            "--tolerance",
            tolerance,
        ]
    )
    out = capsys.readouterr().out
    assert exit_code == code, out
    assert rows(out) == {
        "/device:CPU:0": {1: "ok", 64: "ok", 256: "ok"},
        FAKE_GPU: {1: gpu_verdict, 64: gpu_verdict, 256: gpu_verdict},
    }
    assert ("verdict: AGREE" in out) == (code == 0)
    assert (f"verdict: DISAGREE: {FAKE_GPU}" in out) == (code == 1)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--models-dir", "/nonexistent/models"], id="no-models-dir"),
        pytest.param(["--models-dir", str(BUNDLED_MODELS), "--model", "nope"], id="no-such-model"),
        pytest.param(
            ["--models-dir", str(BUNDLED_MODELS), "--model", "lenet5", "--version", "999"], id="no-such-version"
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, args):
    assert devices.main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith("error: ")
