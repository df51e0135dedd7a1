"""Log lines are JSON, and TensorFlow's native chatter stays out of them unless the level is debug."""

from __future__ import annotations

import json
import logging
import os

import pytest

from app.logs import JsonFormatter, native_output_silenced, uvicorn_log_config


def native_write(text: str) -> None:
    os.write(2, text.encode())  # as C++ code writes: past Python's sys.stderr


def test_native_lines_are_held_back_at_info(capfd) -> None:
    with native_output_silenced("info"):
        native_write("E0000 cuda_platform.cc:52] failed call to cuInit\n")
    native_write("after\n")
    assert capfd.readouterr().err == "after\n"


def test_native_lines_pass_at_debug(capfd) -> None:
    with native_output_silenced("debug"):
        native_write("I0000 port.cc:153] oneDNN custom operations are on\n")
    assert "oneDNN" in capfd.readouterr().err


def test_native_lines_are_logged_when_the_block_fails(caplog) -> None:
    with pytest.raises(RuntimeError), caplog.at_level(logging.ERROR, logger="lenet.tensorflow"):
        logging.getLogger("lenet.tensorflow").addHandler(caplog.handler)  # "lenet" does not propagate
        try:
            with native_output_silenced("info"):
                native_write("F0000 could not load libcuda.so\n")
                raise RuntimeError("import failed")
        finally:
            logging.getLogger("lenet.tensorflow").removeHandler(caplog.handler)
    assert "could not load libcuda.so" in caplog.text


def test_uvicorn_lines_use_our_json_format() -> None:
    config = uvicorn_log_config("info")
    assert config["loggers"]["uvicorn.access"]["handlers"] == ["json"]
    record = logging.makeLogRecord(
        {
            "name": "uvicorn.access",
            "msg": '%s - "%s %s HTTP/%s" %d',
            "args": ("127.0.0.1:5", "GET", "/healthz", "1.1", 200),
            "levelname": "INFO",
        }
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["logger"] == "uvicorn.access" and entry["message"].endswith('"GET /healthz HTTP/1.1" 200')
