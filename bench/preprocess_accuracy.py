"""How much does app.preprocess help on images that do not look like MNIST?

Renders MNIST test digits the way users send them (browser canvas exports, photos of paper),
scores the bundled model on each rendering with and without `preprocess_image`, and prints a
markdown table. The naive path is what a service without preprocessing does: decode, grayscale,
resize to 28x28, divide by 255.

    .venv/bin/python bench/preprocess_accuracy.py --n 2000 --model models/lenet5/1
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # runnable as a plain script from any folder

from app.imaging import preprocess_image  # noqa: E402

Render = Callable[[np.ndarray, np.random.Generator], bytes]


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _stroke(digit: np.ndarray, side: int) -> Image.Image:
    """The digit's ink cropped, upscaled with smoothing to `side` pixels along its longer side,
    edges sharpened like a brush stroke."""
    rows, cols = np.nonzero(digit)
    crop = Image.fromarray(digit[rows.min():rows.max() + 1, cols.min():cols.max() + 1])
    scale = side / max(crop.size)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    smooth = np.asarray(crop.resize(size, Image.Resampling.BICUBIC), np.float32) / 255
    return Image.fromarray((np.clip((smooth - 0.25) / 0.4, 0, 1) * 255).astype(np.uint8))


def render_mnist(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The control: the 28x28 test digit itself as a PNG."""
    return _encode(Image.fromarray(digit), "PNG")


def render_canvas(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 280x280 browser canvas export: transparent black background, black strokes, off-centre."""
    stroke = _stroke(digit, int(rng.integers(90, 230)))
    alpha = Image.new("L", (280, 280), 0)
    left = int(rng.integers(0, 280 - stroke.width + 1))
    top = int(rng.integers(0, 280 - stroke.height + 1))
    alpha.paste(stroke, (left, top))
    black = Image.new("RGB", (280, 280), (0, 0, 0))
    black.putalpha(alpha)
    return _encode(black, "PNG")


def render_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A phone photo of paper: grey paper with a lighting gradient, dark tilted ink, noise, JPEG q70."""
    width, height = 200, 240
    stroke = _stroke(digit, int(rng.integers(100, 180)))
    stroke = stroke.rotate(float(rng.uniform(-8, 8)), Image.Resampling.BICUBIC, expand=True)
    ink = Image.new("L", (width, height), 0)
    left = int(rng.integers(0, max(1, width - stroke.width + 1)))
    top = int(rng.integers(0, max(1, height - stroke.height + 1)))
    ink.paste(stroke, (left, top))
    share = np.asarray(ink, np.float32) / 255
    angle = rng.uniform(0, 2 * np.pi)
    rows, cols = np.mgrid[0:height, 0:width]
    ramp = (np.cos(angle) * (cols / width - 0.5) + np.sin(angle) * (rows / height - 0.5)) * rng.uniform(0, 60)
    paper = rng.uniform(170, 230) + ramp
    gray = paper * (1 - share) + rng.uniform(20, 60) * share + rng.normal(0, 6, (height, width))
    tint = np.array([1.0, 0.98, 0.93])  # warm room light
    rgb = np.clip(gray[..., None] * tint, 0, 255).astype(np.uint8)
    return _encode(Image.fromarray(rgb), "JPEG", quality=70)


def naive(data: bytes) -> np.ndarray:
    """No preprocessing: decode, grayscale, squash to 28x28, scale to 0..1."""
    image = Image.open(io.BytesIO(data)).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    return np.asarray(image, np.float32) / 255


def load_model(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A SavedModel as x[N,28,28,1] -> scores[N,10]; prefers `serving_default`, else `serve`."""
    import tensorflow as tf  # deferred: startup is slow and only this step needs it

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures.get("serving_default")

    def predict(x: np.ndarray) -> np.ndarray:
        tensor = tf.constant(x[..., None], tf.float32)
        if signature is None:
            return loaded.serve(tensor).numpy()
        (name,) = signature.structured_input_signature[1].keys()
        outputs = signature(**{name: tensor})
        scores = outputs["probabilities"] if "probabilities" in outputs else next(iter(outputs.values()))
        return scores.numpy()

    return predict


def accuracy(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    hits = sum(int((predict(x[i:i + 500]).argmax(axis=1) == y[i:i + 500]).sum()) for i in range(0, len(x), 500))
    return 100 * hits / len(x)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="MNIST test digits per rendering")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "datasets" / "mnist.npz")
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "lenet5" / "1")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    with np.load(args.data) as data:
        rng = np.random.default_rng(args.seed)
        picked = rng.choice(len(data["y_test"]), size=min(args.n, len(data["y_test"])), replace=False)
        digits, labels = data["x_test"][picked], data["y_test"][picked].astype(np.int64)
    predict = load_model(args.model)
    renderings: dict[str, Render] = {
        "MNIST 28x28 PNG (control)": render_mnist,
        "browser canvas 280x280 RGBA": render_canvas,
        "photo of paper 200x240 JPEG": render_photo,
    }
    print(f"model {args.model}, {len(labels)} test digits, seed {args.seed}\n")
    print("| rendering | without preprocessing | with preprocessing |")
    print("|---|---:|---:|")
    for title, render in renderings.items():
        started = time.perf_counter()
        files = [render(digit, rng) for digit in digits]
        plain = accuracy(predict, np.stack([naive(f) for f in files]), labels)
        prepared = accuracy(predict, np.stack([preprocess_image(f) for f in files]), labels)
        seconds = time.perf_counter() - started
        print(f"| {title} | {plain:.1f}% | {prepared:.1f}% |", flush=True)
        print(f"{title}: {seconds:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
