"""Training the model to doubt what is not one digit (training.wrong_cuts): the candidates are the reader's
own, labelled by the digits' ink they hold; wrong cuts target every class equally in the loss and are left
out of the accuracy."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from app.imaging.segment import Candidate, segment_number
from tests.training.test_train import quick_config
from training import wrong_cuts as module
from training.config import TrainConfig
from training.train import DigitAccuracy, SmoothedSparseCrossentropy, make_loss, train
from training.wrong_cuts import NOT_A_DIGIT, wrong_cuts


def test_cuts_are_the_readers_candidates_labelled_by_the_ink_they_hold(small_mnist):
    images, labels = wrong_cuts(small_mnist.x_train, small_mnist.y_train, 400, seed=3)
    assert images.shape == (400, 28, 28) and images.dtype == np.uint8 and labels.shape == (400,)
    wrong = labels == NOT_A_DIGIT
    assert 0.25 < wrong.mean() < 0.75, wrong.mean()  # about as many right cuts as wrong ones
    assert set(labels[~wrong]) <= set(range(10)) and len(set(labels[~wrong])) >= 8
    assert (images.max(axis=(1, 2)) >= 250).all()  # framed as the reader frames them: strokes stretched to 1
    again, same = wrong_cuts(small_mnist.x_train, small_mnist.y_train, 400, seed=3)
    assert (again == images).all() and (same == labels).all()  # seeded


def held_by_candidates(images: np.ndarray, touching: bool) -> np.ndarray:
    """Each candidate of the reader on two digits written side by side: the share of each digit's ink it holds."""
    rng = np.random.default_rng(0)
    layers = module._written(images, rng, touching=touching)
    segmented = segment_number(module._rendered(layers.max(axis=0), rng), masks=True)
    mass = layers.sum(axis=(1, 2))
    held = []
    for candidate in segmented.candidates:
        top, left, mask = candidate.mask
        held.append(layers[:, top : top + mask.shape[0], left : left + mask.shape[1]][:, mask].sum(axis=1) / mass)
    return np.array(held)


def test_each_digit_is_offered_alone_and_touching_ones_together(small_mnist):
    pair = small_mnist.x_train[[int(np.flatnonzero(small_mnist.y_train == d)[0]) for d in (3, 8)]]
    apart = held_by_candidates(pair, touching=False)
    whole = module.WHOLE  # a pen's soft edges are partly left out of every candidate's mask
    assert any(h[0] > whole and h[1] < 0.01 for h in apart) and any(h[1] > whole and h[0] < 0.01 for h in apart)
    together = held_by_candidates(pair, touching=True)
    assert any(min(h) > whole for h in together)  # the pair whole: a wrong cut
    assert any(0.2 < h[0] < 0.8 for h in together)  # a cut through the 3: a wrong cut too


def test_a_wrong_cut_targets_every_class_equally():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]], dtype="float32")
    loss = float(SmoothedSparseCrossentropy(0.0)(np.array([NOT_A_DIGIT, NOT_A_DIGIT]), probabilities))
    assert loss == pytest.approx(float(np.mean(-np.log(probabilities).mean(axis=1))), rel=1e-5)
    uniform = np.full((1, 3), 1 / 3, np.float32)  # the answer the loss wants: its least
    assert float(SmoothedSparseCrossentropy(0.1)(np.array([NOT_A_DIGIT]), uniform)) < loss
    assert make_loss(TrainConfig(wrong_cuts=10)) != "sparse_categorical_crossentropy"


def test_accuracy_counts_digits_only():
    metric = DigitAccuracy()
    metric.update_state(np.array([0, 1, NOT_A_DIGIT, NOT_A_DIGIT]), np.eye(3, dtype="float32")[[0, 2, 0, 1]])
    assert float(metric.result()) == pytest.approx(0.5)  # one of the two digits right; wrong cuts not counted


def test_training_with_wrong_cuts(tmp_path, small_mnist):
    config = quick_config(tmp_path, wrong_cuts=300, train_limit=600, epochs=2)
    assert "--wrong-cuts" in config.to_argv()
    result = train(config, small_mnist)
    assert result.train_size == round(600 * 0.9) + 300
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert result.history["accuracy"][-1] > 0.3
    keras.backend.clear_session()


def test_fewer_cuts_than_processes(small_mnist):
    images, labels = wrong_cuts(small_mnist.x_train, small_mnist.y_train, 1, seed=0, processes=2)
    assert images.shape == (1, 28, 28) and labels.shape == (1,)
    empty, none = wrong_cuts(small_mnist.x_train, small_mnist.y_train, 0, seed=0)
    assert empty.shape == (0, 28, 28) and none.shape == (0,)


def test_a_cut_is_judged_by_the_share_of_each_digits_ink_it_holds():
    layers = np.zeros((2, 10, 20), np.float32)
    layers[0, :, 0:10] = 1.0  # a digit's ink in columns 0-9, another's in 10-19
    layers[1, :, 10:20] = 1.0
    mass = layers.sum(axis=(1, 2))

    def holding(first: int, last: int) -> int:
        mask = np.zeros((10, 20), bool)
        mask[:, first:last] = True
        return module.cut_kind(layers, mass, Candidate(np.zeros((28, 28), np.float32), (0, 0, 1, 1), (0, 0, mask)))

    assert holding(0, 10) == 0 and holding(10, 20) == 1  # each digit whole
    assert holding(0, 11) == 0  # with a sliver of its neighbour (10% of its ink)
    assert holding(0, 5) == NOT_A_DIGIT  # half a digit
    assert holding(0, 20) == NOT_A_DIGIT  # both
    assert holding(0, 8) == module.AMBIGUOUS  # 80%: neither clearly right nor clearly wrong
