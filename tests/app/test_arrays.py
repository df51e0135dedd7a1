from __future__ import annotations

import numpy as np
import pytest

from app.arrays import batch_from_lists, no_ink, normalise_batch, preprocess_array
from app.errors import BadArray
from tests.conftest import FIXTURE_MNIST

with np.load(FIXTURE_MNIST) as _data:
    SEVEN = _data["x_test"][0]  # white on black uint8


def assert_mnist_like(a: np.ndarray) -> None:
    assert a.shape == (28, 28) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1


EXPECTED = SEVEN.astype(np.float32) / 255


@pytest.mark.parametrize(
    "instance",
    [
        pytest.param(SEVEN.tolist(), id="28x28-ints-0-255"),
        pytest.param(EXPECTED.tolist(), id="28x28-floats-0-1"),
        pytest.param(SEVEN.reshape(-1).tolist(), id="flat-784"),
        pytest.param(SEVEN.reshape(28, 28, 1).tolist(), id="28x28x1"),
        pytest.param(SEVEN.astype(float).tolist(), id="28x28-floats-0-255"),
        pytest.param(SEVEN, id="numpy-uint8"),
        pytest.param(EXPECTED.reshape(28, 28, 1), id="numpy-float32-28x28x1"),
        pytest.param(tuple(tuple(row) for row in SEVEN.tolist()), id="tuples"),
    ],
)
def test_valid_arrays_are_read_alike(instance: object) -> None:
    out = preprocess_array(instance)
    assert_mnist_like(out)
    np.testing.assert_allclose(out, EXPECTED, atol=1e-6)


def test_zero_one_integers_read_as_the_unit_scale() -> None:
    # JSON writes 1.0 as 1, so a binary 0..1 image arrives as integers and must not be divided by 255.
    binary = (SEVEN > 127).astype(int)
    np.testing.assert_array_equal(preprocess_array(binary.tolist()), binary)


def _with(value: object, row: int = 5, col: int = 5) -> list:
    rows = SEVEN.tolist()
    rows[row][col] = value
    return rows


def _deeply_nested(depth: int) -> list:
    nested: list = [0]
    for _ in range(depth):
        nested = [nested]
    return nested


def _ragged() -> list:
    rows = SEVEN.tolist()
    rows[10] = rows[10][:27]
    return rows


@pytest.mark.parametrize(
    ("instance", "mentions"),
    [
        pytest.param(_with(float("nan")), "finite", id="nan"),
        pytest.param(_with(float("inf")), "finite", id="inf"),
        pytest.param(_with(float("-inf")), "finite", id="minus-inf"),
        pytest.param(_with(-1), "between", id="negative"),
        pytest.param(_with(256), "between", id="above-255"),
        pytest.param(_with(10**400), "between", id="huge-int"),
        pytest.param(_with("12"), "str", id="string"),
        pytest.param(_with(None), "NoneType", id="none"),
        pytest.param(_with(True), "bool", id="bool"),
        pytest.param(_with({"v": 1}), "dict", id="dict"),
        pytest.param(_with([1, 2]), "list", id="list-in-place-of-a-pixel"),
        pytest.param(_ragged(), "ragged", id="ragged-row"),
        pytest.param(SEVEN[:27].tolist(), "27x28", id="27x28"),
        pytest.param(list(range(785)), "785", id="flat-785"),
        pytest.param(np.zeros((28, 28, 2)).tolist(), "28x28x2", id="28x28x2"),
        pytest.param([], "shape", id="empty-list"),
        pytest.param(5, "int", id="scalar"),
        pytest.param("[[0]]", "str", id="json-text"),
        pytest.param(_deeply_nested(100_000), "shape", id="deeply-nested"),
        pytest.param(np.zeros((28, 28), bool), "bool", id="numpy-bool"),
        pytest.param(np.full((28, 28), "a"), "array of", id="numpy-strings"),
        pytest.param(np.zeros((28, 29)), "28x29", id="numpy-wrong-shape"),
        pytest.param(np.full((28, 28), np.nan), "finite", id="numpy-nan"),
    ],
)
def test_invalid_arrays_are_refused_with_the_reason(instance: object, mentions: str) -> None:
    with pytest.raises(BadArray) as caught:
        preprocess_array(instance)
    assert mentions in caught.value.message


def test_batches_scale_each_image_by_its_own_range():
    batch = np.stack([SEVEN.astype(np.float64), SEVEN / 255.0])
    out = normalise_batch(batch)
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    np.testing.assert_allclose(normalise_batch(np.ones((1, 28, 28)), scale=255.0), 1 / 255, rtol=1e-6)


@pytest.mark.parametrize(
    "value,mentions",
    [
        pytest.param(np.nan, "finite", id="nan"),
        pytest.param(-0.5, "between", id="negative"),
        pytest.param(300.0, "between", id="above-255"),
    ],
)
def test_batches_refuse_bad_values(value, mentions):
    batch = np.zeros((2, 28, 28))
    batch[1, 3, 3] = value
    with pytest.raises(BadArray, match=mentions):
        normalise_batch(batch)


def test_batch_fast_path_matches_instance_by_instance():
    instances = [SEVEN.tolist(), (SEVEN / 255).tolist(), (SEVEN.T / 255).tolist()]  # each scaled on its own
    batch = batch_from_lists(instances)
    assert batch is not None and batch.shape == (3, 28, 28)
    for row, instance in zip(batch, instances):
        np.testing.assert_allclose(row, preprocess_array(instance), atol=1e-6)


@pytest.mark.parametrize(
    "instances",
    [
        pytest.param([SEVEN.tolist(), SEVEN[:27].tolist()], id="ragged"),
        pytest.param([[["a"] * 28] * 28], id="strings"),
        pytest.param([[[None] * 28] * 28], id="nulls"),
        pytest.param([np.zeros((28, 29)).tolist()], id="wrong-shape"),
    ],
)
def test_batch_fast_path_declines_what_it_cannot_vouch_for(instances):
    assert batch_from_lists(instances) is None


def test_no_ink_is_true_only_for_images_where_nothing_stands_out() -> None:
    # As an image file is `no_ink` when no ink stands out MIN_CONTRAST (~20/255) above its paper (app.imaging.ink).
    batch = np.zeros((8, 28, 28), np.float32)
    batch[1] = EXPECTED
    batch[2, 27, 27] = 1 / 255  # one faint pixel: nothing stands out
    batch[4] = 1.0  # all ink: one colour, nothing stands out (was read as an 8 at 0.88: a new user's finding)
    batch[5] = 0.5
    batch[5, 0, 0] = 0.6  # stands out: read
    batch[6] = 1.0
    batch[6, 27, 27] = 254 / 255  # all ink but one pixel a shade lighter: read as an 8 before (an outside finding)
    batch[7, 10:12, 10:12] = 0.1  # a faint but visible mark: read
    assert no_ink(batch).tolist() == [True, False, True, True, True, False, True, False]
