"""The model repository's folder layout, the one place that knows it: `<root>/<name>/<version>/` with a
`saved_model.pb`, its `metadata.json` and `report/`. The service and the training package both use it, and it
imports no TensorFlow. Every name is checked and every path resolved to lie inside the root."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

METADATA_FILE = "metadata.json"
REPORT_DIR = "report"
SAVED_MODEL_FILE = "saved_model.pb"
# Conservative on purpose: letters, digits, `_` and `-`, starting with a letter or digit. No dot at all,
# so never `.`, `..` or a hidden folder; no separator, so never a path.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)


class InvalidModelName(ValueError):
    """Not a model name, or a name whose folder resolves outside the repository."""


class MetadataError(ValueError):
    """A version's metadata.json is there but unreadable."""


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name) or not name.isascii():
        raise InvalidModelName(f"{name[:80]!r} is not a model name (letters, digits, '_' and '-', at most 64)")
    return name


def model_dir(root: str | Path, name: str) -> Path:
    """`root/name`, after checking the name and that the folder, symlinks resolved, lies inside the root."""
    root = Path(root).resolve()
    folder = (root / check_model_name(name)).resolve()
    if folder.parent != root:
        raise InvalidModelName(f"model {name!r} lies outside the repository")
    return folder


def model_names(root: str | Path) -> list[str]:
    """The models in the repository: folders with a valid name that lie inside it."""
    root = Path(root)
    if not root.is_dir():
        return []
    names = []
    for child in root.iterdir():
        try:
            if model_dir(root, child.name).is_dir():
                names.append(child.name)
        except InvalidModelName:
            continue
    return sorted(names)


def version_dirs(root: str | Path, name: str) -> dict[int, Path]:
    """Integer-named folders holding a saved_model.pb (as TensorFlow Serving reads them); temporary and
    stray folders are not versions. An invalid name raises InvalidModelName."""
    folder = model_dir(root, name)
    if not folder.is_dir():
        return {}
    found = {}
    for child in folder.iterdir():
        if (
            child.name.isdigit()
            and child.is_dir()
            and (child / SAVED_MODEL_FILE).is_file()
            and child.resolve().parent == folder  # a version linked in from elsewhere is not one
        ):
            found[int(child.name)] = child
    return found


def version_numbers(root: str | Path, name: str) -> list[int]:
    return sorted(version_dirs(root, name))


def read_metadata(version_dir: str | Path) -> dict[str, object]:
    """A version's metadata: {} when it has none; MetadataError (naming only the version) when unreadable."""
    path = Path(version_dir) / METADATA_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise MetadataError(
            f"{path.parent.parent.name}/{path.parent.name}: unreadable {METADATA_FILE} ({type(exc).__name__})"
        ) from exc
    if not isinstance(data, dict):
        raise MetadataError(f"{path.parent.parent.name}/{path.parent.name}: {METADATA_FILE} is not an object")
    return data


def check_writable(folder: str | Path) -> None:
    """OSError, naming the folder, when files cannot be written in `folder` (created for the check, and removed again
    if it was not there): a run finds out before it trains for minutes, not at its export."""
    folder = Path(folder).absolute()
    missing = [p for p in [folder, *folder.parents] if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-check-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write in {folder}: {exc.strerror or exc}") from exc
    finally:
        for created in missing:  # deepest first
            try:
                created.rmdir()
            except OSError:
                break


def write_version(root: str | Path, name: str, write: Callable[[Path], None], metadata: dict[str, object]) -> Path:
    """Write a new version: `write(folder)` fills a hidden temporary folder beside the versions, then it is
    renamed to the next integer. A reader scanning the repository never sees half a version, and an
    existing version is never overwritten: the number is chosen and the rename done under a lock file."""
    folder = model_dir(root, name)
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".tmp-{uuid.uuid4().hex}"
    try:
        write(staging)
        full = {"name": name, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **metadata}
        with open(folder / ".export.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            version = max((int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), default=0) + 1
            full["version"] = version
            _write_json(staging / METADATA_FILE, full)
            target = folder / str(version)
            os.rename(staging, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_json(path: Path, data: dict[str, object]) -> None:
    with open(path, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
