"""bench/mnist_file.py: every bench that reads MNIST says how to get it when the file is missing."""

from __future__ import annotations

import pytest

from tests.bench import load_bench


@pytest.mark.parametrize("name", ["read_accuracy", "preprocess_accuracy", "train_load"])
def test_each_bench_that_reads_mnist_says_how_to_get_it_when_it_is_missing(capsys, tmp_path, name):
    """preprocess_accuracy.py was a FileNotFoundError traceback; train_load.py handed the path to /train."""
    with pytest.raises(SystemExit) as caught:
        load_bench(name).main(["--data", str(tmp_path / "mnist.npz")])
    assert caught.value.code == 2
    assert f"no MNIST at {tmp_path / 'mnist.npz'}: `make mnist` writes data/mnist.npz" in capsys.readouterr().err
