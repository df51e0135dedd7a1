"""Progress as JSON lines in a file, for whoever watches a training job (the service's /train)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import keras

# What keras hands a callback: metric name -> value (a float, or a NumPy or tensor scalar).
Logs = dict[str, Any]


def append_event(progress_file: Path | None, event: str, **fields: object) -> None:
    if progress_file is None:
        return
    line = json.dumps({"event": event, "time": round(time.time(), 3), **fields})
    with open(progress_file, "a") as handle:  # one write per line: a reader never sees half an event
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class ProgressLog(keras.callbacks.Callback):  # type: ignore[misc]  # keras has no types: its classes are Any
    """Epoch ends always; batches at most every `every_s` seconds."""

    def __init__(self, path: Path, epochs: int, steps: int, every_s: float = 1.0) -> None:
        super().__init__()
        self.path, self.epochs, self.steps, self.every_s = path, epochs, steps, every_s
        self._epoch = 0
        self._last = 0.0
        self._started = time.time()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        append_event(self.path, "start", epochs=self.epochs, steps=self.steps)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        now = time.time()
        if now - self._last >= self.every_s:
            self._last = now
            append_event(
                self.path,
                "batch",
                epoch=self._epoch,
                epochs=self.epochs,
                step=batch + 1,
                steps=self.steps,
                **_numbers(logs),
                elapsed=round(now - self._started, 1),
            )

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        append_event(
            self.path,
            "epoch",
            epoch=epoch + 1,
            epochs=self.epochs,
            steps=self.steps,
            **_numbers(logs),
            elapsed=round(time.time() - self._started, 1),
        )


def _numbers(logs: Logs | None) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in (logs or {}).items() if isinstance(v, (int, float)) or hasattr(v, "item")}
