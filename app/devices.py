"""`python -m app.devices` (`make gpu-check`): which devices TensorFlow sees on this host, and whether
each of them answers like the CPU.

    python -m app.devices [--models-dir models] [--model lenet5] [--version N] [--tolerance 1e-3]
                          [--seconds 0.5] [--require-gpu]

Prints the physical and logical devices (a GPU's name and compute capability when TensorFlow knows
them) and the device the service would run on; loads one model version (default: the newest of the
default model) on every CPU and GPU device; runs batches of 1, 64 and 256 fixed inputs on each and
compares its probabilities with the CPU's (max absolute difference within --tolerance, same argmax);
prints images/s per device and batch size. Exit 0 when every device agrees, 1 when one disagrees or
fails (or, with --require-gpu, when no GPU is visible), 2 when the arguments name no loadable model."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.config import get_settings
from app.errors import BrokenModel, brief
from app.repository import DigitModel
from training import layout

BATCH_SIZES = (1, 64, 256)
REFERENCE = "/device:CPU:0"
CHECKED_KINDS = ("CPU", "GPU")


class UsageError(Exception):
    """The arguments name no model version that can be checked (exit 2)."""


@dataclass
class Result:
    device: str
    batch: int
    images_per_s: float = 0.0
    max_diff: float = 0.0  # against the CPU's probabilities for the same batch
    argmax_differs: int = 0
    error: str | None = None

    def agrees(self, tolerance: float) -> bool:
        return self.error is None and self.max_diff <= tolerance and self.argmax_differs == 0


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m app.devices", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models-dir", type=Path, default=settings.models_dir)
    parser.add_argument("--model", default=settings.default_model)
    parser.add_argument("--version", type=int, default=None, help="default: the newest version")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="max |probability difference| from the CPU")
    parser.add_argument("--seconds", type=float, default=0.5, help="timing per device and batch size")
    parser.add_argument("--require-gpu", action="store_true", help="fail (exit 1) when TensorFlow sees no GPU")
    args = parser.parse_args(argv)
    try:
        name, version, path = find_version(args.models_dir, args.model, args.version)
        return run(name, version, path, args.tolerance, args.seconds, args.require_gpu)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def find_version(models_dir: Path, name: str, version: int | None) -> tuple[str, int, Path]:
    if not models_dir.is_dir():
        raise UsageError(f"models directory {models_dir} does not exist")
    try:
        versions = layout.version_dirs(models_dir, name)
    except layout.InvalidModelName as exc:
        raise UsageError(str(exc)) from None
    if not versions:
        models = [m for m in layout.model_names(models_dir) if layout.version_dirs(models_dir, m)]
        raise UsageError(
            f"no versions of model {name!r} in {models_dir} (models with versions: {', '.join(models) or 'none'})"
        )
    if version is None:
        version = max(versions)  # what the service serves by default
    if version not in versions:
        raise UsageError(f"model {name!r} has no version {version} (versions: {', '.join(map(str, sorted(versions)))})")
    return name, version, versions[version]


def run(name: str, version: int, path: Path, tolerance: float, seconds: float, require_gpu: bool) -> int:
    from app import model  # the TensorFlow import, after the arguments are known to be good

    serving_device = model.configure_devices()  # before anything starts the runtime (memory growth)
    build = model.tensorflow_build()
    print(
        f"TensorFlow {build['version']} (CUDA build: {build['is_cuda_build']}, "
        f"CUDA {build['cuda_version']}, cuDNN {build['cudnn_version']})"
    )
    print("physical devices:")
    for device in model.physical_devices():
        print(f"  {device.name:<28} {device.kind}{_details(device.details)}")
    logical = model.logical_devices()
    print("logical devices:")
    for device in logical:
        print(f"  {device.name:<28} {device.kind}")
    print(f"the service would run on {serving_device}")
    checked = [device.name for device in logical if device.kind in CHECKED_KINDS]
    has_gpu = any(device.kind == "GPU" for device in logical)

    try:
        reference = model.SavedModelDigits(path, REFERENCE)
    except BrokenModel as exc:
        raise UsageError(str(exc)) from None
    images = probe_images(reference, max(BATCH_SIZES))
    expected = {size: reference.predict(images[:size]) for size in BATCH_SIZES}
    reference.close()
    print(f"\nmodel {name} version {version} ({path}); {len(images)} seeded noise images; tolerance {tolerance:g}\n")

    print(f"{'device':<24} {'batch':>5} {'images/s':>10}  {'max |dp| vs CPU':>15}  {'argmax diff':>11}  verdict")
    results: list[Result] = []
    for device_name in checked:
        for result in check_device(model.SavedModelDigits, path, device_name, images, expected, seconds):
            results.append(result)
            print(_row(result, tolerance))

    failed = sorted({r.device for r in results if not r.agrees(tolerance)}, key=checked.index)
    if not has_gpu:
        print("\nno GPU visible to TensorFlow: only the CPU was checked")
    if failed:
        print(f"verdict: DISAGREE: {', '.join(failed)} differ from the CPU (tolerance {tolerance:g}, same argmax)")
        return 1
    if require_gpu and not has_gpu:
        print("verdict: FAIL: --require-gpu and TensorFlow sees no GPU")
        return 1
    print(
        f"verdict: AGREE: every device ({len(checked)} checked) matches the CPU "
        f"(max |dp| <= {tolerance:g}, same argmax)"
    )
    return 0


def probe_images(reference: DigitModel, count: int, seed: int = 0) -> np.ndarray:
    """Seeded noise images, the `count` with the clearest CPU answer out of four times as many, so an
    argmax that differs elsewhere is a real disagreement and not a near-tie broken the other way."""
    pool = np.random.default_rng(seed).random((4 * count, 28, 28, 1), dtype=np.float32)
    top2 = np.sort(reference.predict(pool), axis=1)[:, -2:]
    clearest = np.sort(np.argsort(top2[:, 0] - top2[:, 1], kind="stable")[:count])
    return pool[clearest]


def check_device(
    load: Callable[[Path, str], DigitModel],
    path: Path,
    device: str,
    images: np.ndarray,
    expected: dict[int, np.ndarray],
    seconds: float,
) -> list[Result]:
    try:
        digits = load(path, device)
    except Exception as exc:  # noqa: BLE001 - a device that cannot even load the model disagrees, whatever it raises
        return [Result(device, size, error=f"load failed: {_short(exc)}") for size in expected]
    results: list[Result] = []
    try:
        for size, want in expected.items():
            result = Result(device, size)
            try:
                got = digits.predict(images[:size])  # also the warm-up call for the timing below
                result.max_diff = float(np.max(np.abs(got - want)))
                result.argmax_differs = int(np.sum(got.argmax(axis=1) != want.argmax(axis=1)))
                result.images_per_s = _throughput(digits, images[:size], seconds)
            except Exception as exc:  # noqa: BLE001 - any failure to predict on a device is that device's verdict
                result.error = f"predict failed: {_short(exc)}"
            results.append(result)
    finally:
        digits.close()
    return results


def _throughput(digits: DigitModel, batch: np.ndarray, seconds: float) -> float:
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        digits.predict(batch)
        calls += 1
    return calls * len(batch) / (time.perf_counter() - start)


def _row(result: Result, tolerance: float) -> str:
    if result.error:
        return f"{result.device:<24} {result.batch:>5} {'-':>10}  {'-':>15}  {'-':>11}  FAIL: {result.error}"
    verdict = "ok" if result.agrees(tolerance) else "DISAGREES"
    return (
        f"{result.device:<24} {result.batch:>5} {result.images_per_s:>10,.0f}  {result.max_diff:>15.2e}  "
        f"{f'{result.argmax_differs}/{result.batch}':>11}  {verdict}"
    )


def _details(details: dict[str, object]) -> str:
    shown = []
    if details.get("device_name"):
        shown.append(str(details["device_name"]))
    capability = details.get("compute_capability")  # TensorFlow gives (major, minor)
    if isinstance(capability, tuple | list) and capability:
        shown.append("compute capability " + ".".join(map(str, capability)))
    return f"  ({', '.join(shown)})" if shown else ""


def _short(exc: Exception) -> str:
    return f"{type(exc).__name__}: {brief(str(exc), 160)}"


if __name__ == "__main__":
    sys.exit(main())
