"""Structured logs: one JSON object per line, ours and uvicorn's alike, with any `extra=` fields the caller
attached; TensorFlow's native start-up lines kept out of them unless the level is debug."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
_handler: logging.Handler | None = None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _JsonHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is when a record comes (a test runner's capture included); while
    `native_output_silenced` points descriptor 2 elsewhere, to a copy of the real one, so that no log line
    is swallowed with TensorFlow's."""

    override: TextIO | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = self.override or sys.stderr  # under the handler's lock (Handler.handle takes it)
        super().emit(record)


def json_handler() -> logging.Handler:
    """The one handler of every logger here, ours and uvicorn's."""
    global _handler
    if _handler is None:
        _handler = _JsonHandler()
        _handler.setFormatter(JsonFormatter())
    return _handler


def configure_logging(level: str) -> None:
    root = logging.getLogger("lenet")
    root.handlers[:] = [json_handler()]
    root.setLevel(level.upper())
    root.propagate = False


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's `log_config`: its server and access lines through the same JSON handler as ours."""
    logger = {"handlers": ["json"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"json": {"()": "app.logs.json_handler"}},
        "loggers": {"uvicorn": logger, "uvicorn.error": {"level": level.upper()}, "uvicorn.access": logger},
    }


@contextmanager
def native_output_silenced(level: str) -> Iterator[None]:
    """TensorFlow's C++ runtime writes its start-up lines (absl's preamble, oneDNN, the CUDA probe's
    `failed call to cuInit` on a CPU host) straight to descriptor 2, whatever TF_CPP_MIN_LOG_LEVEL says.
    Hold them back while the block runs: dropped when it succeeds, logged as one error when it fails,
    and left alone at debug level."""
    if level.lower() == "debug":
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # later native lines: errors only
    sys.stderr.flush()
    saved = os.dup(2)
    handler = json_handler()
    assert isinstance(handler, _JsonHandler)
    handler.override = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            sink.seek(0)
            held = sink.read().decode(errors="replace").strip()
            if held:
                logging.getLogger("lenet.tensorflow").error("native output before the failure:\n%s", held)
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            handler.override.close()
            handler.override = None
