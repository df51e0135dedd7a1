"""How well does app.imaging read images that do not look like MNIST?

Renders MNIST test digits the way users send them (bench/renderings.py: canvas exports, scans,
phone photos of plain, ruled and squared paper at three difficulty levels, with shadows and
perspective), scores a model on each rendering three ways and prints a markdown table:
- without preprocessing: decode, grayscale, squash to 28x28, divide by 255 (a naive service);
- before: app/preprocess.py as it was at git revision `--before` (skipped with `--before ''`);
- now: app.imaging.preprocess_image, with the path each image took and the time per image.
Images the preprocessing answers "no digit" count as misread. A second table checks images with no
digit at all (blank paper, one colour, noise): the share answered "no digit".

    .venv/bin/python bench/preprocess_accuracy.py --n 1000 [--model models/lenet5/2]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # runnable as a plain script from any folder
sys.path.insert(0, str(REPO_ROOT / "bench"))

from mnist_file import add_data_argument, require_data
from renderings import Render, blank_paper, encode, renderings

from app.imaging import NoDigit
from app.imaging.digit import prepare
from training.layout import version_dirs

BEFORE = "6f65442"  # main before issue 14: app/preprocess.py, the clean-image path only
Predict = Callable[[np.ndarray], np.ndarray]


def naive(data: bytes) -> np.ndarray:
    """No preprocessing: decode, grayscale, squash to 28x28, scale to 0..1."""
    image = Image.open(io.BytesIO(data)).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    return np.asarray(image, np.float32) / 255


def load_before(revision: str) -> ModuleType:
    """app/preprocess.py as it was at `revision`, imported under another name."""
    source = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "show", f"{revision}:app/preprocess.py"], check=True, capture_output=True
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix="preprocess-before-"))
    path = folder / "preprocess_before.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("preprocess_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_model(path: Path) -> Predict:
    """A SavedModel as x[N,28,28] -> scores[N,10]; prefers `serving_default`, else `serve`."""
    import tensorflow as tf  # deferred: startup is slow and only this step needs it

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures.get("serving_default")

    def predict(x: np.ndarray) -> np.ndarray:
        tensor = tf.constant(x[..., None], tf.float32)
        if signature is None:
            return np.asarray(loaded.serve(tensor))
        (name,) = signature.structured_input_signature[1].keys()
        outputs = signature(**{name: tensor})
        scores = outputs["probabilities"] if "probabilities" in outputs else next(iter(outputs.values()))
        return np.asarray(scores)

    return predict


def score(predict: Predict, images: list[np.ndarray | None], labels: np.ndarray) -> float:
    """Percent read right; None (no digit found) counts as wrong."""
    found = [i for i, image in enumerate(images) if image is not None]
    if not found:
        return 0.0
    x = np.stack([images[i] for i in found])
    digits = np.concatenate([predict(x[i : i + 500]).argmax(axis=1) for i in range(0, len(x), 500)])
    return 100 * float((digits == labels[found]).sum()) / len(labels)


def run_now(files: list[bytes]) -> tuple[list[np.ndarray | None], float, Counter[str]]:
    """app.imaging on each file: the arrays (None for no digit), ms per image, images per path."""
    images: list[np.ndarray | None] = []
    paths: Counter[str] = Counter()
    started = time.perf_counter()
    for data in files:
        try:
            prepared = prepare(data)
        except NoDigit as exc:
            images.append(None)
            paths[f"no digit ({exc.reason})"] += 1
            continue
        images.append(prepared.pixels)
        paths[prepared.path] += 1
    return images, 1000 * (time.perf_counter() - started) / len(files), paths


def run_before(module: ModuleType, files: list[bytes]) -> tuple[list[np.ndarray | None], float]:
    started = time.perf_counter()
    images: list[np.ndarray | None] = [module.preprocess_image(data) for data in files]
    return images, 1000 * (time.perf_counter() - started) / len(files)


def no_digit_cases() -> dict[str, Render]:
    def uniform(digit: np.ndarray, rng: np.random.Generator) -> bytes:
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        return encode(Image.new("RGB", (int(rng.integers(28, 600)), int(rng.integers(28, 600))), colour), "PNG")

    def noise(digit: np.ndarray, rng: np.random.Generator) -> bytes:
        size = (int(rng.integers(28, 400)), int(rng.integers(28, 400)))
        pixels = rng.integers(0, 256, size, dtype=np.uint8)
        return encode(Image.fromarray(pixels), "PNG" if rng.uniform() < 0.5 else "JPEG")

    def blank_canvas(digit: np.ndarray, rng: np.random.Generator) -> bytes:
        return encode(Image.new("RGBA", (280, 280), (0, 0, 0, 0)), "PNG")

    cases: dict[str, Render] = {"blank canvas": blank_canvas, "one colour": uniform, "pure noise": noise}
    for level in ("easy", "hard"):
        for paper in ("plain", "ruled", "grid"):
            cases[f"phone photo of blank {paper} paper, {level}"] = blank_paper(level, paper)
    return cases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="MNIST test digits per rendering")
    parser.add_argument("--seed", type=int, default=0)
    add_data_argument(parser)
    parser.add_argument("--model", type=Path, default=None, help="a version folder (default: lenet5's newest)")
    parser.add_argument("--before", default=BEFORE, help="git revision of the 'before' column ('' to skip)")
    parser.add_argument("--only", default="", help="only renderings whose title contains this text")
    args = parser.parse_args(argv)
    require_data(parser, args.data)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    with np.load(args.data) as data:
        rng = np.random.default_rng(args.seed)
        picked = rng.choice(len(data["y_test"]), size=min(args.n, len(data["y_test"])), replace=False)
        digits, labels = data["x_test"][picked], data["y_test"][picked].astype(np.int64)
    if args.model is None:
        versions = version_dirs(REPO_ROOT / "models", "lenet5")
        args.model = versions[max(versions)]
    predict = load_model(args.model)
    before = load_before(args.before) if args.before else None
    print(f"model {args.model}, {len(labels)} MNIST test digits per rendering, seed {args.seed}\n")
    print("| rendering | without preprocessing | before | now | ms per image now (before) | paths now |")
    print("|---|---:|---:|---:|---:|---|")
    for title, render in renderings().items():
        if args.only not in title:
            continue
        files = [render(digit, rng) for digit in digits]
        plain = score(predict, [naive(f) for f in files], labels)
        images, ms, paths = run_now(files)
        now = score(predict, images, labels)
        if before is not None:
            old_images, old_ms = run_before(before, files)
            old, old_time = f"{score(predict, old_images, labels):.1f}%", f" ({old_ms:.2f})"
        else:
            old, old_time = "-", ""
        shares = ", ".join(f"{name} {count}" for name, count in paths.most_common())
        print(f"| {title} | {plain:.1f}% | {old} | {now:.1f}% | {ms:.2f}{old_time} | {shares} |", flush=True)

    print('\n| image with no digit | answered "no digit" | ms per image |')
    print("|---|---:|---:|")
    for title, render in no_digit_cases().items():
        if args.only not in title:
            continue
        files = [render(digit, rng) for digit in digits[: max(1, len(digits) // 5)]]
        images, ms, _ = run_now(files)
        none = sum(image is None for image in images)
        print(f"| {title} | {100 * none / len(files):.1f}% | {ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
