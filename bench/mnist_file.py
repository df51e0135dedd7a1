"""The MNIST file the benchmarks read: their one `--data` option, and a usage error, not a traceback, when
the file is not there."""

from __future__ import annotations

import argparse
from pathlib import Path

# our workspace keeps the real MNIST beside the repository; elsewhere `make mnist` writes data/mnist.npz
DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist.npz"


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT,
        help="mnist.npz (`make mnist` writes data/mnist.npz; default: %(default)s)",
    )


def require_data(parser: argparse.ArgumentParser, path: Path) -> None:
    """Exit with a usage error (status 2) naming how to get MNIST when `path` is not a file."""
    if not path.is_file():
        parser.error(f"no MNIST at {path}: `make mnist` writes data/mnist.npz; then --data data/mnist.npz")
