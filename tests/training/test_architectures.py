from __future__ import annotations

import pytest

from training.architectures import ARCHITECTURES, build_model, explain_parameters, format_explanation
from training.config import ARCHITECTURE_NAMES

EXPECTED_TOTALS = {
    "lenet5": 61_706,
    "lenet5-sigmoid": 61_706,
    "lenet5-compact": 51_902,
    "lenet5-wide": 331_214,
    "cnn-dropout": 3_274_634,
    "lenet5-plus": 468_778,
}


def test_every_architecture_has_an_expected_total():
    assert set(ARCHITECTURES) == set(EXPECTED_TOTALS) == set(ARCHITECTURE_NAMES)


@pytest.mark.parametrize("arch,total", [pytest.param(a, t, id=a) for a, t in EXPECTED_TOTALS.items()])
def test_parameter_total_matches_reference(arch, total):
    model = build_model(arch)
    assert model.count_params() == total
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("arch", [pytest.param(a, id=a) for a in EXPECTED_TOTALS])
def test_explanation_sums_to_total(arch):
    model = build_model(arch)
    rows = explain_parameters(model)
    assert sum(r.params for r in rows) == model.count_params()
    assert format_explanation(model).endswith(f"total: {model.count_params():,} parameters")


def test_lenet5_explanation_gives_the_formulas():
    rows = {r.name: r for r in explain_parameters(build_model("lenet5"))}
    assert rows["c1"].formula == "6 filters x (5x5x1 weights + 1 bias) = 156"
    assert rows["c3"].formula == "16 filters x (5x5x6 weights + 1 bias) = 2,416"
    assert rows["f5"].formula == "400 inputs x 120 + 120 biases = 48,120"
    assert rows["f6"].formula == "120 inputs x 84 + 84 biases = 10,164"
    assert rows["output"].formula == "84 inputs x 10 + 10 biases = 850"
    assert rows["s2"].params == 0 and rows["s2"].output_shape == (None, 14, 14, 6)


def test_sigmoid_variant_uses_sigmoid_and_average_pooling():
    model = build_model("lenet5-sigmoid")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("AveragePooling2D") == 2
    assert model.get_layer("c1").activation.__name__ == "sigmoid"


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="unknown architecture 'lenet6'.*lenet5-plus"):
        build_model("lenet6")
