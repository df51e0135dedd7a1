"""A job's progress: its JSON-lines file read incrementally, the arithmetic that turns its events into
epoch, step and ETA (the one copy, for the API and the admin CLI), and a failure's cause from the log
when the training CLI could not write it as an event."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

log = logging.getLogger("lenet.jobs")

MAX_LINE_BYTES = 1 << 20  # a line longer than this with no newline yet is garbage, not an event being written
# TensorFlow's and absl's native lines ("I0000 00:00:1.5 14537 port.cc:153] oneDNN custom operations are on
# ...", "WARNING: All log messages before absl::InitializeLog() ..."): never the cause of a failure.
NATIVE_LOG_LINE = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]|WARNING: All log messages before absl::)"
)


class ProgressReader:
    """The events of one progress file, read from where the last read stopped.

    The writer appends whole lines, but a reader can still meet a torn line (no newline yet, or never if
    the writer died) and lines that are not events at all: a partial tail is kept until its newline
    arrives; a line that is not a JSON object with an `event` is skipped and counted, never fatal."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[dict[str, object]] = []
        self.skipped = 0
        self._offset = 0
        self._tail = b""

    def refresh(self) -> int:
        """Read what was appended since the last call (one stat when nothing was); the number of new events."""
        try:
            if os.stat(self.path).st_size <= self._offset:  # the file only grows
                return 0
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return 0
        self._offset += len(chunk)
        *lines, self._tail = (self._tail + chunk).split(b"\n")
        if len(self._tail) > MAX_LINE_BYTES:
            lines.append(self._tail)
            self._tail = b""
        before = len(self.events)
        for line in lines:
            self._parse(line)
        return len(self.events) - before

    def finish(self) -> None:
        """The writer has ended: a torn last line will not be completed."""
        self.refresh()
        tail, self._tail = self._tail, b""
        self._parse(tail)

    def last(self, kind: str) -> dict[str, object] | None:
        return next((e for e in reversed(self.events) if e.get("event") == kind), None)

    def _parse(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
            event = None
        if isinstance(event, dict) and isinstance(event.get("event"), str) and event["event"].isidentifier():
            self.events.append(event)
            return
        self.skipped += 1
        if self.skipped <= 3:  # enough to diagnose; a file full of garbage must not flood the log
            log.warning("%s: skipped a line that is not a progress event: %.80r", self.path, line)


def job_progress(events: list[dict[str, object]]) -> dict[str, object]:
    """Epoch, step, loss, accuracy, validation accuracy, elapsed, ETA and the fraction done, from the
    latest `batch` or `epoch` event (empty before the first)."""
    latest = next((e for e in reversed(events) if e.get("event") in ("batch", "epoch")), None)
    if latest is None:
        return {}
    epoch_end = next((e for e in reversed(events) if e.get("event") == "epoch"), {})
    epochs, steps = _int(latest.get("epochs"), 1), _int(latest.get("steps"), 1)
    step = steps if latest["event"] == "epoch" else _int(latest.get("step"), 0)
    done = min(1.0, (_int(latest.get("epoch"), 1) - 1 + step / steps) / epochs)
    elapsed = _float(latest.get("elapsed"))
    return {
        "epoch": latest.get("epoch"),
        "epochs": epochs,
        "step": step,
        "steps": steps,
        "loss": latest.get("loss"),
        "accuracy": latest.get("accuracy"),
        "val_accuracy": epoch_end.get("val_accuracy"),
        "elapsed_s": elapsed,
        "fraction": round(done, 4),
        "eta_s": round(elapsed / done - elapsed, 1) if done > 0 else None,
    }


def _int(value: object, default: int) -> int:
    return int(value) if isinstance(value, (int, float)) and value > 0 else default


def _float(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def log_tail(path: Path, lines: int = 20) -> list[str]:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - 16384))
            return handle.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def cause_in_log(lines: list[str]) -> str | None:
    """The last line that is neither blank nor TensorFlow's native start-up noise (an `error: ...` line or
    a traceback's last line, when the process ended by an error)."""
    return next((line.strip() for line in reversed(lines) if line.strip() and not NATIVE_LOG_LINE.match(line)), None)
