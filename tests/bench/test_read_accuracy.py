"""bench/read_accuracy.py: the numbers its renderer composes hold every digit it was given, and `--only` reads
the whole table's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from app.imaging.reading import Reading
from app.imaging.segment import Segmented
from tests.bench import load_bench
from tests.conftest import FIXTURE_MNIST


def _read_accuracy():
    return load_bench("read_accuracy")


def test_a_digit_whose_only_rows_shared_with_its_neighbour_are_at_its_far_right_is_still_written(full_mnist):
    """MNIST test digits 74, 6164 and 7542 (7, 2, 8) with a pen of 8.6%, touching, as a development run drew
    them: the third digit's rows that meet the second's ink hold ink only far right in its box, so the column
    where it meets lay left of the canvas and composing failed ("could not be broadcast")."""
    bench = _read_accuracy()
    rng = np.random.default_rng([11, 12, 11])
    picked = rng.choice(len(full_mnist.y_test), size=int(rng.integers(2, 9)), replace=False)
    assert picked.tolist() == [74, 6164, 7542]  # the same draw as the run that failed
    ink, _, layers = bench.compose(full_mnist.x_test[picked], rng, True, rng.uniform(0.05, 0.12))
    assert len(layers) == 3
    for layer in layers:  # each digit drawn, with ink of its own
        assert (layer > 0.3).sum() > 20
    assert np.allclose(ink, layers.max(axis=0))


@pytest.fixture
def stubbed(monkeypatch):
    """The bench with no model, no segmentation and no reading: (the module, the images it was given to read)."""
    module = _read_accuracy()
    seen: list[bytes] = []

    class Model:
        def __init__(self, path: object) -> None:
            pass

    def segment(data: bytes, masks: bool = False) -> Segmented:
        seen.append(data)
        return Segmented(reason="no_digit")

    monkeypatch.setattr(module, "SavedModelDigits", Model)
    monkeypatch.setattr(module, "segment_number", segment)
    monkeypatch.setattr(module, "read", lambda *args: (Reading([], "no_digit"), Reading([], "no_digit")))
    monkeypatch.setattr(module, "right_cuts_offered", lambda *args: False)
    return module, seen


def test_only_reads_the_numbers_the_whole_table_reads(stubbed, capsys):
    """`--only` draws the conditions it skips all the same, so a row measured alone is the whole table's row
    (it used to skip their draws, and read other numbers than the table's)."""
    module, seen = stubbed

    def run(only: str) -> list[bytes]:
        seen.clear()
        module.main(["--n", "3", "--data", str(FIXTURE_MNIST), "--no-line-reader", "--only", only])
        return list(seen)

    whole = run("")
    alone = run("phone photo JPEG, touching")
    assert len(whole) == 6 * 3 and len(alone) == 3
    assert alone == whole[-3:]  # the last condition drawn: touching photos
    # none of the 3 read: 0.0%, and Wilson's interval for 0 of 3 is 0 to z^2 / (3 + z^2) = 56.1% (z = 1.96)
    assert "| phone photo JPEG | touching | 0.0% (0.0-56.1) |" in capsys.readouterr().out


def test_a_rows_interval_is_wilsons():
    """946 of 1000 (the README's separated photos): Wilson's 95% interval, by its formula."""
    low, high = _read_accuracy().interval(946, 1000)
    z, n, p = 1.959964, 1000, 0.946
    centre, half = (
        (p + z * z / (2 * n)) / (1 + z * z / n),
        z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5,
    )
    assert abs(low - (centre - half)) < 1e-5 and abs(high - (centre + half)) < 1e-5
    assert round(100 * low, 1) == 93.0 and round(100 * high, 1) == 95.8


def test_several_seeds_read_each_seeds_numbers_and_pool_them(stubbed, capsys):
    """`--seed 3 4` reads the numbers `--seed 3` and `--seed 4` read, each draw as with its seed alone, and its
    rows count them together (none of the 6 read here: Wilson's interval 0-39.0%)."""
    module, seen = stubbed
    only = "phone photo JPEG, touching"

    def run(*seeds: int) -> list[bytes]:
        seen.clear()
        module.main(
            ["--n", "3", "--data", str(FIXTURE_MNIST), "--no-line-reader", "--only", only, "--seed", *map(str, seeds)]
        )
        return list(seen)

    alone = run(3) + run(4)
    capsys.readouterr()
    assert run(3, 4) == alone
    out = capsys.readouterr().out
    assert "seeds 3, 4" in out
    assert "| phone photo JPEG | touching | 0.0% (0.0-39.0) |" in out  # 0 of 6: z^2 / (6 + z^2)


def test_an_only_that_matches_no_condition_or_no_mnist_file_is_a_usage_error(capsys):
    """`--only nosuchrow` printed an empty table and exited 0; a missing MNIST file was a traceback."""
    module = _read_accuracy()
    for argv, said in [
        (["--only", "nosuchrow", "--data", str(FIXTURE_MNIST)], "matches no condition"),
        (["--data", "/nonexistent/mnist.npz"], "make mnist"),
    ]:
        with pytest.raises(SystemExit) as caught:
            module.main(argv)
        assert caught.value.code == 2 and said in capsys.readouterr().err


def test_a_turned_number_is_the_same_number_at_a_slant(full_mnist):
    # --turn writes the table's numbers at a slant: each digit's layer turned with the ink, none of it cut off
    bench = _read_accuracy()
    rng = np.random.default_rng(3)
    number = bench.compose(full_mnist.x_test[[0, 1, 2, 3, 4, 5]], rng, False, 0.08)
    ink, height, layers = bench.turned(number, 20.0)
    assert height == number[1] and len(layers) == 6
    assert ink.sum() == pytest.approx(number[0].sum(), rel=0.02)
    assert np.allclose(ink, layers.max(axis=0), atol=1e-6)
    # its right end higher: the last digit's ink above the first's by the slant over the distance between them
    (y0, x0), (y5, x5) = [np.argwhere(layer > 0.3).mean(axis=0) for layer in (layers[0], layers[5])]
    assert np.degrees(np.arctan2(y0 - y5, x5 - x0)) == pytest.approx(20.0, abs=4.0)


def test_turn_reads_the_tables_numbers_turned(stubbed, capsys):
    module, seen = stubbed
    argv = ["--n", "2", "--only", "scan PNG, separated", "--data", str(FIXTURE_MNIST), "--no-line-reader"]
    module.main(argv)
    module.main([*argv, "--turn", "20"])
    level, turned = seen[:2], seen[2:]
    assert len(turned) == 2 and all(a != b for a, b in zip(level, turned))
    assert "turned 20 degrees either way" in capsys.readouterr().out
