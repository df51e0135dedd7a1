"""How long `POST /read` takes on a phone camera's whole frame with a small number on it, against the same number
cropped to its writing (the baseline: what bench/read_accuracy.py's photos look like), both through one server
(`python -m app`, pinned to CPU 0, one request at a time) in the same run.

Each number (3-7 MNIST test digits, written 50-110 pixels tall with a pen of 5-10% of the height, as in
bench/read_accuracy.py) is written somewhere on a 3024x2268 frame of paper, in four kinds of frame: a sheet filling
the frame (light falling off across it), the same with a soft shadow across it (a hand, a phone: 30-50% of the
light), notebook paper (rules 1.3-1.8 digit heights apart, a margin line) with such a shadow, and a sheet turned up to
8 degrees on a dark desk with the desk all round it and a shadow. The crop is the frame's own pixels round the
number's ink, 0.6 of its height on every side. Prints, per kind, the frames and crops read right, the seconds per
frame (median, 90th percentile, slowest) and the median and slowest frame's time in crops' median times.

    .venv/bin/python bench/frame_time.py --n 8   # 32 frames and their crops, a few minutes alone on 2 cores
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import start_service
from mnist_file import add_data_argument, require_data
from read_accuracy import compose
from renderings import LEVELS, _lighting

KINDS = ("sheet", "shadow", "ruled", "desk")
FRAME = (2268, 3024)  # (height, width): a 12-megapixel phone camera's frame in landscape


def frame_and_crop(digits: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[bytes, bytes]:
    """A whole frame of `kind` with the number written on it, and the crop round its ink (both JPEG)."""
    ink, height, _ = compose(digits, rng, touching=False, pen=float(rng.uniform(0.05, 0.1)))
    rows, cols = FRAME
    sheet = np.zeros(FRAME, np.float32)  # ink and printed lines as the share of light they absorb
    if kind == "ruled":
        spacing = round(height * rng.uniform(1.3, 1.8))
        for y in range(int(rng.integers(0, spacing)), rows, spacing):
            cv2.line(sheet, (0, y), (cols - 1, y), float(rng.uniform(0.25, 0.45)), int(rng.integers(3, 7)))
        x = int(rng.integers(150, 400))
        cv2.line(sheet, (x, 0), (x, rows - 1), float(rng.uniform(0.3, 0.5)), int(rng.integers(4, 8)))
    top, left = int(rng.integers(500, rows - 500 - ink.shape[0])), int(rng.integers(500, cols - 500 - ink.shape[1]))
    window = sheet[top : top + ink.shape[0], left : left + ink.shape[1]]
    np.maximum(window, 0.85 * ink, out=window)
    paper = (1 - sheet) * float(rng.uniform(0.8, 0.92))
    if kind == "desk":  # the sheet turned on a desk, the desk all round it
        turn = cv2.getRotationMatrix2D((cols / 2, rows / 2), float(rng.uniform(-8, 8)), float(rng.uniform(0.7, 0.8)))
        bottom, right = top + ink.shape[0], left + ink.shape[1]
        paper = cv2.warpAffine(paper, turn, (cols, rows), borderValue=-1.0)
        box = np.float32([[left, top], [right, top], [left, bottom], [right, bottom]])
        corners = cv2.transform(box[:, None], turn)[:, 0]
        left, top = (int(v) for v in corners.min(axis=0))
        right, bottom = (int(v) for v in corners.max(axis=0))
        height *= float(np.hypot(*turn[0, :2]))
        ink_box = (top, bottom, left, right)
        desk = 0.15 + 0.03 * cv2.GaussianBlur(rng.normal(0, 1, FRAME).astype(np.float32), (0, 0), 6)
        paper = np.where(paper < 0, desk, paper)
    else:
        ink_box = (top, top + ink.shape[0], left, left + ink.shape[1])
    light = _lighting((rows // 8, cols // 8), rng, LEVELS["medium"], kind != "sheet")
    gray = paper * cv2.resize(light, (cols, rows), interpolation=cv2.INTER_LINEAR) * 255
    gray = cv2.GaussianBlur(gray, (0, 0), float(rng.uniform(0.6, 1.5))) + rng.normal(0, 3, FRAME)
    image = np.clip(gray, 0, 255).astype(np.uint8)
    top, bottom, left, right = ink_box
    pad = round(0.6 * height)
    crop = image[max(top - pad, 0) : bottom + pad, max(left - pad, 0) : right + pad]
    quality = [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(80, 93))]
    return cv2.imencode(".jpg", image, quality)[1].tobytes(), cv2.imencode(".jpg", crop, quality)[1].tobytes()


def post(client: httpx.Client, url: str, data: bytes) -> tuple[str, float]:
    """The reading's text (or the refusal's code) and the request's seconds."""
    started = time.perf_counter()
    answer = client.post(url, files={"image": ("frame.jpg", data, "image/jpeg")})
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        return f"HTTP {answer.status_code}", elapsed
    return str(answer.json()["readings"][0]["text"]), elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8, help="numbers per kind of frame")
    parser.add_argument("--seed", type=int, default=0)
    add_data_argument(parser)
    args = parser.parse_args(argv)
    require_data(parser, args.data)
    with np.load(args.data) as data:
        images, labels = data["x_test"], data["y_test"]
    rng = np.random.default_rng(args.seed)
    work = []
    for kind in KINDS:
        for _ in range(args.n):
            picked = rng.choice(len(labels), size=int(rng.integers(3, 8)), replace=False)
            work.append((kind, "".join(map(str, labels[picked])), *frame_and_crop(images[picked], kind, rng)))
    with tempfile.TemporaryDirectory() as logs:
        server = start_service({}, Path(logs))
        try:
            with httpx.Client(timeout=300) as client:
                url = server.url + "/read"
                post(client, url, work[0][3])  # the first request loads the model
                results = [
                    (kind, truth, post(client, url, whole), post(client, url, crop))
                    for kind, truth, whole, crop in work
                ]
        finally:
            server.stop()
    print(f"{args.n} numbers per kind, seed {args.seed}; seconds per request, one at a time, server on CPU 0")
    print(
        "| frame | frames right | crops right | frame median | p90 | slowest | crop median | median / crop's | slowest / crop's |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in (*KINDS, "all"):
        rows = [r for r in results if kind in (r[0], "all")]
        frames = np.array([r[2][1] for r in rows])
        crops = np.array([r[3][1] for r in rows])
        base = float(np.median(crops))
        print(
            f"| {kind} | {sum(r[2][0] == r[1] for r in rows)}/{len(rows)} | {sum(r[3][0] == r[1] for r in rows)}/{len(rows)}"
            f" | {np.median(frames):.2f} | {np.percentile(frames, 90):.2f} | {frames.max():.2f} | {base:.2f}"
            f" | {np.median(frames) / base:.1f}x | {frames.max() / base:.1f}x |"
        )
    slowest = sorted(results, key=lambda r: -r[2][1])[:5]
    print("slowest frames:", "; ".join(f"{r[0]} {r[1]} read {r[2][0]!r} in {r[2][1]:.1f} s" for r in slowest))


if __name__ == "__main__":
    main()
