"""Write a model into the repository as models/<name>/<version>/, atomically, with its metadata."""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

METADATA_FILE = "metadata.json"
REPORT_DIR = "report"
INPUT_NAME = "image"  # float32 [N, 28, 28, 1] in 0..1
OUTPUT_NAME = "probabilities"  # float32 [N, 10]


def existing_versions(model_dir: Path) -> list[int]:
    """Integer folder names, as TensorFlow Serving reads them; anything else (temporary folders) is ignored."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def write_saved_model(model: keras.Model, folder: Path) -> None:
    """SavedModel whose serving signature takes `image` and returns `probabilities`."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve",
        fn=lambda image: {OUTPUT_NAME: model(image, training=False)},
        input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(str(folder), verbose=False)


def export_version(model: keras.Model, repository: str | Path, name: str, metadata: dict[str, object],
                   write_extras: Callable[[Path], None] | None = None) -> Path:
    """Export into a hidden temporary folder beside the versions, then rename it to the next integer.

    A reader scanning the repository never sees half a version, and an existing version is never
    overwritten: the version number is chosen and the rename done under a lock file.
    """
    model_dir = Path(repository) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = model_dir / f".tmp-{uuid.uuid4().hex}"
    try:
        write_saved_model(model, staging)
        if write_extras is not None:
            write_extras(staging)
        full = {
            "name": name,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "tensorflow_version": tf.__version__,
            "keras_version": keras.__version__,
            "signature": {"input": {INPUT_NAME: [None, 28, 28, 1], "dtype": "float32", "range": [0, 1]},
                          "output": {OUTPUT_NAME: [None, 10]}},
            **metadata,
        }
        with open(model_dir / ".export.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            version = max(existing_versions(model_dir), default=0) + 1
            full["version"] = version
            _write_json(staging / METADATA_FILE, full)
            target = model_dir / str(version)
            os.rename(staging, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_metadata(version_dir: Path) -> dict[str, object]:
    path = Path(version_dir) / METADATA_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _write_json(path: Path, data: dict[str, object]) -> None:
    with open(path, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
