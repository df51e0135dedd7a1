"""Fuzzing: schemathesis against the service's own OpenAPI document (every operation, with the admin
token), and hypothesis on the preprocessing: no 5xx, answers as documented, only documented errors."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.arrays import preprocess_array
from app.errors import BadArray, BadImage
from app.imaging import NO_DIGIT_REASONS, NoDigit, preprocess_image
from tests.reliability.conftest import ADMIN_TOKEN

# What the issue asks for: no server errors, and every answer matches the schema (status codes,
# content types, headers, bodies). Not included: checks on which *requests* must be refused, since
# much of our validation (pixel ranges, tensor sizes) is deeper than a JSON schema can say.
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
    "response_schema_conformance"
)


def test_schemathesis_finds_no_server_error_and_no_schema_violation(server, tmp_path):
    binary = Path(sys.executable).parent / "schemathesis"
    if not binary.exists() and shutil.which("schemathesis") is None:
        pytest.skip("schemathesis is not installed (it is in the dev extra)")
    done = subprocess.run(
        [
            str(binary if binary.exists() else "schemathesis"),
            "run",
            f"{server.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {ADMIN_TOKEN}",
            "-c",
            CHECKS,
            "-n",
            "25",
            "--request-timeout",
            "30",
            # Unloading the model under test would turn every later request into a 503, by design.
            "--exclude-path",
            "/v2/repository/models/{name}/unload",
            "--seed",
            "1",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:]
    assert "Tested: 2" in done.stdout  # every operation of the document was exercised


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


images = st.one_of(
    st.builds(
        lambda h, w, seed: np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8),
        st.integers(1, 120),
        st.integers(1, 120),
        st.integers(0, 2**32 - 1),
    ),
    st.builds(
        lambda h, w, v: np.full((h, w), v, np.uint8), st.integers(1, 60), st.integers(1, 60), st.integers(0, 255)
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images)
def test_any_image_gives_an_mnist_like_array_or_no_digit(pixels):
    try:
        out = preprocess_image(png(pixels))
    except NoDigit as exc:
        assert exc.reason in NO_DIGIT_REASONS
        return
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_decode_or_fail_as_bad_image(data):
    try:
        out = preprocess_image(data)
    except (BadImage, NoDigit):
        return
    assert out.shape == (28, 28)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=8, max_size=200))
def test_damaged_pngs_fail_only_as_bad_image(noise):
    data = bytearray(png(np.eye(28, dtype=np.uint8) * 255))
    cut = len(noise) % len(data)
    data[cut : cut + len(noise)] = noise  # overwrite a stretch of a real PNG
    try:
        preprocess_image(bytes(data))
    except (BadImage, NoDigit):
        pass


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda children: st.lists(children, max_size=30) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=200,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_json_instance_is_accepted_or_a_bad_array(instance):
    try:
        out = preprocess_array(instance)
    except BadArray:
        return
    assert out.shape == (28, 28) and 0 <= out.min() and out.max() <= 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 255, allow_nan=False), min_size=784, max_size=784))
def test_valid_flat_instances_are_always_accepted(values):
    out = preprocess_array(values)
    assert out.shape == (28, 28)
