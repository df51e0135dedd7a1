"""The real server process with the real model: what a user and an operator do."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import signal
import struct
import subprocess
import threading
import time
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

from app.imaging import NO_DIGIT_REASONS
from tests.conftest import BUNDLED_MODELS, FIXTURE_MNIST, REPO_ROOT, wait_until
from tests.e2e.conftest import answers_to_fixtures, newest_bundled_version, start_server, stop_server


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_readme_curl_example(bundled_server):
    # The README's example, verbatim but for the port, and its answer as the README shows it.
    done = subprocess.run(
        ["curl", "-s", "-F", "image=@examples/digit.png", f"{bundled_server.url}/predict"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body = json.loads(done.stdout)
    assert body["model"] == {"name": "lenet5", "version": newest_bundled_version()}
    assert body["predictions"][0]["digit"] == 7 and body["predictions"][0]["confidence"] > 0.9
    section = (REPO_ROOT / "README.md").read_text().split("## Try it", 1)[1]
    assert json.loads(section.split("```json\n", 1)[1].split("\n```", 1)[0]) == body


def test_real_digits_through_http(server):
    with np.load(FIXTURE_MNIST) as data:
        images, labels = data["x_test"][:200], data["y_test"][:200]
    files = [("image", (f"{i}.png", png(img), "image/png")) for i, img in enumerate(images)]
    response = httpx.post(f"{server.url}/predict", files=files, timeout=60)
    assert response.status_code == 200, response.text
    predicted = np.array([p["digit"] for p in response.json()["predictions"]])
    assert (predicted == labels).mean() >= 0.98

    instances = (images[:50] / 255.0).tolist()
    response = httpx.post(f"{server.url}/predict", json={"instances": instances}, timeout=60)
    predicted = np.array([p["digit"] for p in response.json()["predictions"]])
    assert (predicted == labels[:50]).mean() >= 0.98


@pytest.mark.parametrize(
    ("side", "cut"),
    [
        pytest.param(112, 25, id="112px-cut-at-a-tenth"),
        # Under 64 pixels (the clean path), cut into the strokes' soft edge: a bold 0 or 3 whose strokes filled much of
        # the frame's border was answered no_ink (an outside check's finding: a 122x60 "011" read by /read as no_ink).
        pytest.param(48, 100, id="48px-cut-into-the-strokes"),
    ],
)
def test_digits_cut_to_their_ink_are_read(server, side, cut):
    # A new user's finding: digits cropped to their ink (no paper around them) were read wrong or as no digit.
    with np.load(FIXTURE_MNIST) as data:
        images, labels = data["x_test"][:100], data["y_test"][:100]
    files = []
    for i, digit in enumerate(images):
        ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC))
        rows, cols = np.nonzero(ink > cut)
        crop = 255 - ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        files.append(
            ("image", (f"{i}.png", png(crop), "image/png"))
            if i % 2
            else ("image", (f"{i}.jpg", jpeg(crop), "image/jpeg"))
        )
    response = httpx.post(f"{server.url}/predict", files=files, timeout=60)
    assert response.status_code == 200, response.text
    predicted = np.array([-1 if p["digit"] is None else p["digit"] for p in response.json()["predictions"]])
    assert (predicted == labels).mean() >= 0.95, [(int(t), int(p)) for t, p in zip(labels, predicted) if t != p]


def test_digits_in_thick_boxes_are_not_given_paper_around_the_box(bundled_server):
    # The second outside check of the cut-to-its-ink rule (MNIST test digits 8696, 7994 and 6079, 4x, cut close and
    # boxed on 4, 3 and 2 sides by lines 4-6 pixels thick): the lines filled most of the image's outer tenth, the
    # rule took them for the paper, put paper around the box, and each read as a 0.
    names = ["boxed_4_sides_5.png", "boxed_3_sides_2.png", "boxed_2_sides_7.png"]
    assert answers_to_fixtures(bundled_server.url, "predict", names) == [5, 2, 7]


def test_large_bold_digits_cut_into_their_strokes_are_read(bundled_server):
    # The second outside check's large digital digits cut into their strokes' soft edge (PNG, JPEG, WebP): paper filled
    # under half the frame's outer tenth, so the photo path put none back around them, and read their strokes'
    # outlines (the two 0s as 6s, the 5 as a 3).
    names = ["bold_cut_0.png", "bold_cut_0.jpg", "bold_cut_5.webp"]
    assert answers_to_fixtures(bundled_server.url, "predict", names) == [0, 0, 5]


def test_digits_on_flat_paper_close_to_the_edges_are_read(bundled_server):
    # The second outside check's digital images (flat paper, 9-13% of it round the digit, PNG, JPEG, WebP): the border
    # was one colour but for a few pixels of the digit's soft edge, so the photo path took them, and read a thick 1 as
    # the outline of its stroke (an 8 at 0.97), a 5 framed by its paper (a 2).
    names = ["flat_paper_037_1.png", "flat_paper_034_5.png", "flat_paper_002_1.jpg", "flat_paper_043_9.webp"]
    assert answers_to_fixtures(bundled_server.url, "predict", names) == [1, 5, 1, 9]


def jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


WHITE_PNG = png(np.full((120, 90), 255, np.uint8))  # a blank sheet
GREY_JPEG = jpeg(np.full((64, 64, 3), 128, np.uint8))  # one colour, with JPEG's noise


def assert_answered(item: dict, label: int) -> None:
    assert item["digit"] == label and item["confidence"] > 0.5 and len(item["probabilities"]) == 10, item
    assert "reason" not in item


def assert_no_digit(item: dict, reasons: tuple[str, ...] = ("no_ink",)) -> None:
    """A no-digit answer; `reasons` are those app.imaging may give this image (an all-zero array: no_ink)."""
    assert item["reason"] in reasons, item
    assert item == {"digit": None, "confidence": None, "probabilities": None, "reason": item["reason"]}, item


def test_images_without_a_digit_answer_null_beside_real_digits(server):
    with np.load(FIXTURE_MNIST) as data:
        digits, labels = data["x_test"][:2], data["y_test"][:2].tolist()
    files = [
        ("image", ("white.png", WHITE_PNG, "image/png")),
        ("image", ("0.png", png(digits[0]), "image/png")),
        ("image", ("grey.jpg", GREY_JPEG, "image/jpeg")),
        ("image", ("1.png", png(digits[1]), "image/png")),
    ]
    response = httpx.post(f"{server.url}/predict", files=files, timeout=30)
    assert response.status_code == 200, response.text
    white, first, grey, second = response.json()["predictions"]
    assert_no_digit(white)
    assert_no_digit(grey, tuple(NO_DIGIT_REASONS))  # one colour plus JPEG's noise: imaging decides which
    assert_answered(first, labels[0])
    assert_answered(second, labels[1])

    instances = [np.zeros((28, 28), int).tolist(), digits[0].tolist(), {"b64": base64.b64encode(GREY_JPEG).decode()}]
    response = httpx.post(f"{server.url}/predict", json={"instances": instances}, timeout=30)
    assert response.status_code == 200, response.text
    zeros, first, grey = response.json()["predictions"]
    assert_no_digit(zeros)
    assert_no_digit(grey, tuple(NO_DIGIT_REASONS))
    assert_answered(first, labels[0])


def test_a_request_with_no_digit_at_all_is_answered_and_names_the_model(server):
    response = httpx.post(f"{server.url}/predict?return_image=true", json={"instances": [[0.0] * 784] * 2}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "lenet5", "version": 1}
    for item in body["predictions"]:
        assert not np.asarray(Image.open(io.BytesIO(base64.b64decode(item.pop("image"))))).any()
        assert_no_digit(item)
    response = httpx.post(
        f"{server.url}/predict?model=nope", files={"image": ("w.png", WHITE_PNG, "image/png")}, timeout=30
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"


def test_the_readmes_no_digit_example_is_what_the_server_answers(bundled_server):
    section = (REPO_ROOT / "README.md").read_text().split("### When an image holds no digit", 1)[1]
    documented = json.loads(section.split("```json\n", 1)[1].split("\n```", 1)[0])
    files = [
        ("image", ("blank.png", WHITE_PNG, "image/png")),
        ("image", ("digit.png", (REPO_ROOT / "examples/digit.png").read_bytes(), "image/png")),
    ]
    response = httpx.post(f"{bundled_server.url}/predict", files=files, timeout=30)
    assert response.json() == documented


def test_kserve_v2_request(server):
    with np.load(FIXTURE_MNIST) as data:
        images, labels = data["x_test"][:4], data["y_test"][:4]
    request = {
        "inputs": [{"name": "image", "shape": [4, 28, 28, 1], "datatype": "UINT8", "data": images.reshape(-1).tolist()}]
    }
    response = httpx.post(f"{server.url}/v2/models/lenet5/infer", json=request, timeout=30)
    assert response.status_code == 200, response.text
    output = response.json()["outputs"][0]
    probabilities = np.array(output["data"]).reshape(output["shape"])
    assert probabilities.argmax(axis=1).tolist() == labels.tolist()
    assert httpx.get(f"{server.url}/v2/models/lenet5/ready").status_code == 200


def bomb_png(width: int, height: int) -> bytes:
    """A small file whose header claims a huge image (all-zero rows compress to almost nothing)."""
    raw = zlib.compress(b"\x00" * (width + 1) * 64)  # not even the full data: the header alone must be refused

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", raw)
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "files,status,code",
    [
        pytest.param({"image": ("bomb.png", bomb_png(50_000, 50_000), "image/png")}, 400, "image_too_large", id="bomb"),
        pytest.param({"image": ("empty.png", b"", "image/png")}, 400, "bad_image", id="zero-bytes"),
        pytest.param(
            {"image": ("cut.png", (REPO_ROOT / "examples/digit.png").read_bytes()[:60], "image/png")},
            400,
            "bad_image",
            id="truncated",
        ),
    ],
)
def test_bad_uploads_leave_the_server_ready(server, files, status, code):
    response = httpx.post(f"{server.url}/predict", files=files, timeout=30)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert httpx.get(f"{server.url}/readyz").status_code == 200


def publish(models_dir, source, version: int):
    """Write a version the way the exporter does: a hidden folder, then one rename."""
    staging = models_dir / "lenet5" / f".tmp-{version}"
    shutil.copytree(source, staging)
    staging.rename(models_dir / "lenet5" / str(version))


def wait_for_version(server, version: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{server.url}/readyz").json()["models"].get("lenet5") == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"version {version} not served after {timeout} s:\n{server.log()[-3000:]}")


def test_hot_swap_under_load_loses_nothing_and_refuses_broken_versions(server):
    body = (REPO_ROOT / "examples/digit.png").read_bytes()
    answers: list[tuple[int, int]] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                r = http.post(f"{server.url}/predict", files={"image": ("d.png", body, "image/png")})
                answers.append((r.status_code, r.json()["model"]["version"] if r.status_code == 200 else -1))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(answers) >= 8, 30, lambda: f"the clients got no answers: {answers}")
    publish(server.models_dir, server.models_dir / "lenet5" / "1", 2)
    wait_for_version(server, 2)
    wait_until(
        lambda: sum(version == 2 for _, version in list(answers)) >= 8,
        30,
        lambda: f"no answers from version 2 after the swap: {answers[-20:]}",
    )
    stop.set()
    for thread in threads:
        thread.join()
    assert answers and all(status == 200 for status, _ in answers)
    assert {version for _, version in answers} == {1, 2}

    broken = server.models_dir / "lenet5" / ".tmp-3"
    shutil.copytree(server.models_dir / "lenet5" / "1", broken)
    (broken / "variables" / "variables.data-00000-of-00001").write_bytes(b"corrupt")
    broken.rename(server.models_dir / "lenet5" / "3")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        versions = {v["version"]: v["state"] for v in httpx.get(f"{server.url}/models").json()["models"][0]["versions"]}
        if versions.get(3) == "refused":
            break
        time.sleep(0.2)
    assert versions == {1: "available", 2: "serving", 3: "refused"}
    r = httpx.post(f"{server.url}/predict", files={"image": ("d.png", body, "image/png")})
    assert r.json()["model"]["version"] == 2 and r.json()["predictions"][0]["digit"] == 7
    assert "refused lenet5 version 3" in server.log()


def test_openapi_documents_every_endpoint(server):
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    for path in (
        "/predict",
        "/models",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v2",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
        "/v2/health/ready",
    ):
        assert path in paths, path
    assert "multipart/form-data" in paths["/predict"]["post"]["requestBody"]["content"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/", "/docs", "/models", "/v2", "/v2/health/live"])
def test_head_answers_wherever_get_does_without_a_body(server, path):
    # RFC 9110: HEAD is GET without the body; monitors and link checkers use it (a new user's finding: 405 on each).
    done = subprocess.run(
        ["curl", "-s", "-I", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", f"{server.url}{path}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout == "200 0", (path, done.stdout)
    get = httpx.get(f"{server.url}{path}")
    head = httpx.head(f"{server.url}{path}")
    assert get.status_code == head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_head_on_a_post_only_route_is_405_naming_post(server):
    response = httpx.head(f"{server.url}/predict")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_every_line_the_server_wrote_is_json(server):
    """Run last in this module: by now the server has started, served, swapped versions and refused bad input.
    Its stdout and stderr hold JSON lines only (no TensorFlow preamble, no plain uvicorn lines)."""
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    lines = server.log().splitlines()
    assert any('"uvicorn' in line for line in lines)
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= entry.keys(), line


def test_requests_still_unanswered_when_the_shutdown_grace_ends_get_503_with_their_id(tmp_path):
    # An outside check: on SIGTERM, the requests still in flight when LENET_GRACEFUL_SHUTDOWN_S ran out were answered
    # a plain-text 500 (uvicorn's, for a cancelled app), without the JSON envelope or X-Request-ID, each with a
    # traceback in the log. Now a 503 `shutting_down` saying to retry (another replica), with its id; the log clean.
    models = tmp_path / "models"
    for name, version in (("lenet5", 1), ("lenet5-read", 6)):
        shutil.copytree(BUNDLED_MODELS / name / str(version), models / name / str(version))
    server = start_server(
        models,
        tmp_path / "server.log",
        LENET_GRACEFUL_SHUTDOWN_S="1",
        LENET_READ_SLOTS="1",
        LENET_MAX_READ_QUEUE="16",
        LENET_GRPC_PORT="0",
    )
    frame = (REPO_ROOT / "tests" / "fixtures" / "ruled_photo_6263793.jpg").read_bytes()
    answers: list[httpx.Response] = []

    def read(i: int) -> None:
        answers.append(
            httpx.post(
                server.url + "/read",
                files={"image": ("frame.jpg", frame, "image/jpeg")},
                headers={"X-Request-ID": f"late-{i}"},
                timeout=60,
            )
        )

    senders = [threading.Thread(target=read, args=(i,)) for i in range(17)]  # one reading, sixteen waiting
    try:
        for sender in senders:
            sender.start()
        inflight = re.compile(r"^lenet_inflight_requests (\S+)$", re.MULTILINE)
        wait_until(  # every request in the server (or answered already), most of them still waiting for the slot
            lambda: float(inflight.search(httpx.get(server.url + "/metrics").text).group(1)) + len(answers) >= 17,
            60,
            "the reads never all arrived",
        )
        server.process.send_signal(signal.SIGTERM)
        for sender in senders:
            sender.join(60)
        server.process.wait(30)
    finally:
        stop_server(server)
    statuses = sorted(answer.status_code for answer in answers)
    assert len(answers) == 17 and set(statuses) == {200, 503}, statuses  # the grace is too short for all of them
    for answer in answers:
        assert answer.headers["x-request-id"].startswith("late-")
        if answer.status_code == 503:
            assert answer.json()["error"]["code"] == "shutting_down" and answer.headers["retry-after"] == "1"
        else:
            assert answer.json()["readings"][0]["text"] == "6263793"
    log = server.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]
