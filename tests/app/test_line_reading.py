"""Reading with a line reader: the number's line image (app.imaging.line), the reading that weighs the
classifier's cuts against the line reader's texts (app.imaging.reading), and POST /read sending the lines
of a request to a version that has one."""

from __future__ import annotations

from contextlib import asynccontextmanager
from itertools import pairwise

import numpy as np
import pytest

from app.imaging import ctc
from app.imaging.line import HEIGHT, LINE_HEIGHT, PHASES, WIDTH, line_image, views
from app.imaging.reading import LINE_WEIGHT, finer_cuts_wanted, read_number
from app.imaging.segment import FINER_WIDE_PIECE, Candidate, Cluster, Segmented, number_line, segment_number
from app.main import create_app
from tests.app.conftest import add_version, fake_settings, frames_of, served
from tests.app.imaging_helpers import png
from tests.app.number_helpers import ink_of, page, touching
from tests.app.test_read import NUMBER


def line_of(placed: list[tuple[np.ndarray, int, int]], size: tuple[int, int]) -> np.ndarray:
    line = segment_number(png(page(placed, size))).line
    assert line is not None and line.shape == (HEIGHT, WIDTH) and line.dtype == np.float32
    return line


def inked_rows_and_columns(line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    solid = line > 0.3
    return np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))


def test_a_number_written_small_or_large_makes_about_the_same_line():
    small = line_of([(ink_of(i, 50), 20 + 45 * n, 30) for n, i in enumerate([0, 1, 2])], (110, 200))
    large = line_of([(ink_of(i, 150), 40 + 135 * n, 60) for n, i in enumerate([0, 1, 2])], (270, 500))
    for line in (small, large):
        rows, columns = inked_rows_and_columns(line)
        assert LINE_HEIGHT - 3 <= len(rows) <= LINE_HEIGHT + 5 and abs(rows.mean() - HEIGHT / 2) <= 3, rows
        assert columns[0] <= 4 and columns[-1] < WIDTH // 2  # left-aligned: three digits in well under half
    assert np.corrcoef(small.ravel(), large.ravel())[0, 1] > 0.8


def test_writing_smaller_than_the_line_is_enlarged_smoothly():
    # An outside check: a "0397" 9 pixels tall was enlarged twice by repeating its pixels (OpenCV's INTER_AREA grows an
    # image so), and the line reader, trained on lines only ever shrunk, read its blocky strokes as "17131771".
    ink = np.zeros((29, 60), np.float32)
    for n, index in enumerate([3, 2, 5]):
        piece = ink_of(index, 9)
        ink[10:19, 4 + 14 * n : 4 + 14 * n + piece.shape[1]] = piece
    line = line_image(ink, 9.0)
    rows = line[line.max(axis=1) > 0.05]
    assert len(rows) >= LINE_HEIGHT
    assert not any(np.array_equal(a, b) for a, b in pairwise(rows))


def test_a_long_gap_is_shortened_and_marks_left_out_are_not_in_the_line():
    near = [(ink_of(i, 80), 30 + 100 * n, 40) for n, i in enumerate([0, 1])]
    far = [near[0], (near[1][0], near[1][1] + 500, 40)]
    _, near_columns = inked_rows_and_columns(line_of(near, (160, 900)))
    _, far_columns = inked_rows_and_columns(line_of(far, (160, 900)))
    assert far_columns[-1] - near_columns[-1] <= 0.6 * LINE_HEIGHT + 2  # 500 pixels became at most 0.6 of a height
    # a speck segmentation leaves out, between the digits (in the line's columns): not in the line
    dirt = [*near, (np.ones((3, 3), np.float32), 115, 60)]
    np.testing.assert_array_equal(line_of(dirt, (160, 900)), line_of(near, (160, 900)))


def test_training_makes_its_lines_as_the_service_does():
    data = png(page([(ink_of(i, 80), 30 + 70 * n, 40) for n, i in enumerate([0, 1, 2, 3])], (160, 400)))
    line = number_line(data)
    assert line is not None
    np.testing.assert_array_equal(line, segment_number(data).line)


def one_cluster_two_digits() -> tuple[Segmented, np.ndarray]:
    """A cluster offered whole (a merge the classifier reads as a sure 8) or cut in two (a 3 and a 0 it is
    less sure of)."""
    blank = np.zeros((28, 28), np.float32)
    boxes = [(0, 0, 140, 100), (0, 0, 70, 100), (70, 0, 70, 100)]
    segmented = Segmented(
        candidates=[Candidate(blank, box) for box in boxes],
        clusters=[Cluster(3, {(0, 2): [0], (0, 1): [1], (1, 2): [2]}, {})],
        line=np.zeros((HEIGHT, WIDTH), np.float32),
    )
    probabilities = np.full((3, 10), 0.02, np.float32)
    for index, digit, sure in ((0, 8, 0.95), (1, 3, 0.6), (2, 0, 0.6)):
        probabilities[index] = (1 - sure) / 9
        probabilities[index, digit] = sure
    return segmented, probabilities


def test_the_line_reader_splits_what_the_classifier_reads_as_one_digit():
    segmented, probabilities = one_cluster_two_digits()
    assert read_number(segmented, probabilities).text == "8"  # the classifier alone: the merge
    reading = read_number(segmented, probabilities, frames_of("30"))
    assert reading.text == "30"
    assert [d.box for d in reading.digits] == [(0, 0, 70, 100), (70, 0, 70, 100)]  # the cut's boxes
    assert [d.confidence for d in reading.digits] == pytest.approx([0.6, 0.6])  # the classifier's, of each
    assert read_number(segmented, probabilities, frames_of("8")).text == "8"  # both agree: nothing changes


def test_a_reading_with_a_line_reader_is_as_sure_as_its_texts_posterior():
    segmented, probabilities = one_cluster_two_digits()
    line = frames_of("30")
    reading = read_number(segmented, probabilities, line)
    # The reading's confidence is its text's share of the texts weighed (the softmax of their scores), not its
    # least certain digit's 0.6: with "8" alone beside it, the share would be this; other texts take a little.
    score_30 = np.log(0.6) * 2 + LINE_WEIGHT * ctc.log_likelihood(line, "30")
    score_8 = np.log(0.95) + LINE_WEIGHT * ctc.log_likelihood(line, "8")
    assert 0.6 < reading.confidence <= 1 / (1 + np.exp(score_8 - score_30)) + 1e-9
    # a line reader torn between "30" and "8" leaves the reading less sure
    torn = np.logaddexp(frames_of("30"), frames_of("8")) - np.log(2)
    assert read_number(segmented, probabilities, torn).confidence < reading.confidence
    assert read_number(segmented, probabilities).confidence == pytest.approx(0.95)  # without: the weakest digit's


def test_a_line_is_read_at_every_phase_of_the_readers_frames():
    # the reader gives a frame every PHASES columns: the views shift the line by each phase, none losing ink
    line = np.zeros((HEIGHT, WIDTH), np.float32)
    line[:, 2:-2] = np.random.default_rng(0).uniform(0, 1, (HEIGHT, WIDTH - 4))
    shown = views(line)
    assert shown.shape == (PHASES, HEIGHT, WIDTH) and np.array_equal(shown[0], line)
    assert np.allclose(shown.sum(axis=(1, 2)), line.sum())
    first = [int(np.flatnonzero(view.any(axis=0))[0]) for view in shown]
    assert sorted(c % PHASES for c in first) == list(range(PHASES))


def test_a_texts_line_likelihood_is_its_mean_over_the_views():
    segmented, probabilities = one_cluster_two_digits()
    # one view's frames read "30", three read "8": the mean favours "8", the first view alone "30"
    frames = np.stack([frames_of("30"), frames_of("8"), frames_of("8"), frames_of("8")])
    assert read_number(segmented, probabilities, frames[:1]).text == "30"
    assert read_number(segmented, probabilities, frames).text == "8"
    # "30" from the first view's beam is still weighed: with three views of "30", it is the reading
    frames = np.stack([frames_of("30"), frames_of("30"), frames_of("30"), frames_of("8")])
    assert read_number(segmented, probabilities, frames).text == "30"


def test_the_line_reader_settles_a_digit_the_classifier_hesitates_over():
    segmented, probabilities = one_cluster_two_digits()
    probabilities[2] = 0.02
    probabilities[2, 0], probabilities[2, 6] = 0.45, 0.39  # a 0 or a 6
    assert read_number(segmented, probabilities, frames_of("36")).text == "36"


def test_a_text_no_path_through_the_cuts_can_read_is_not_a_reading():
    segmented, probabilities = one_cluster_two_digits()
    # "305", the line reader's best, has three digits where the cuts hold two: of the texts they can read,
    # the line reader's frames fit the classifier's merge ("8") worst, the cut read "30" best
    reading = read_number(segmented, probabilities, frames_of("305"))
    assert reading.text == "30" and [d.box for d in reading.digits] == [(0, 0, 70, 100), (70, 0, 70, 100)]


def test_doubted_ink_stays_no_digit_whatever_the_line_reader_says():
    segmented, _ = one_cluster_two_digits()
    doubted = np.full((3, 10), 0.1, np.float32)
    reading = read_number(segmented, doubted, frames_of("30"))
    assert reading.text == "" and reading.reason == "no_digit"


def test_a_mark_the_classifier_leaves_out_is_read_only_when_the_line_reader_sees_a_digit_there():
    blank = np.zeros((28, 28), np.float32)
    segmented = Segmented(
        candidates=[Candidate(blank, (0, 0, 60, 100)), Candidate(blank, (100, 0, 60, 100))],
        clusters=[Cluster(2, {(0, 1): [0]}, {}), Cluster(2, {(0, 1): [1]}, {})],
        line=np.zeros((HEIGHT, WIDTH), np.float32),
    )
    probabilities = np.full((2, 10), 0.1, np.float32)
    probabilities[0] = 0.01 / 9
    probabilities[0, 3] = 0.99  # a sure 3, then what the classifier doubts (0.1 for each digit): a mark
    assert read_number(segmented, probabilities).text == "3"
    assert read_number(segmented, probabilities, frames_of("3")).text == "3"
    reading = read_number(segmented, probabilities, frames_of("31"))
    assert reading.text == "31" and reading.digits[1].box == (100, 0, 60, 100)


@asynccontextmanager
async def client_reading_lines_as(tmp_path, loader, line: str):
    """The app over a version whose classifier reads every candidate as a 7, not very sure, and whose line
    reader reads `line` ("fail": it raises)."""
    settings = fake_settings(tmp_path)
    add_version(settings.models_dir, "lenet5", 1, digit=7, sure=0.5, line=line)
    app = create_app(settings, loader)
    async with served(app) as http:
        yield http


@pytest.fixture
async def line_client(tmp_path, loader):
    async with client_reading_lines_as(tmp_path, loader, "787") as http:
        yield http


async def test_read_sends_a_requests_lines_to_the_version_at_once_and_weighs_them(line_client, loader):
    (model,) = loader.loaded.values()
    files = [("image", ("a.png", NUMBER, "image/png")), ("image", ("b.png", NUMBER, "image/png"))]
    response = await line_client.post("/read", files=files)
    assert response.status_code == 200, response.text
    readings = response.json()["readings"]
    assert [r["text"] for r in readings] == ["787", "787"]  # "777" without the line reader
    assert model.line_sizes == [2 * PHASES]  # both lines, each in its views, in one call
    assert [d["confidence"] for d in readings[0]["digits"]] == pytest.approx(
        [0.5, 0.5 / 9, 0.5], abs=1e-6
    )  # rounded to 6 places


async def test_a_line_reader_that_fails_leaves_the_classifiers_reading(tmp_path, loader):
    async with client_reading_lines_as(tmp_path, loader, "fail") as http:
        response = await http.post("/read", files={"image": ("a.png", NUMBER, "image/png")})
    assert response.status_code == 200, response.text
    assert response.json()["readings"][0]["text"] == "777"


def test_a_second_look_is_wanted_where_the_line_reader_counts_more_digits():
    segmented, probabilities = one_cluster_two_digits()
    merged = read_number(segmented, probabilities)  # "8": one digit
    assert finer_cuts_wanted(merged, frames_of("30")) and finer_cuts_wanted(merged, np.stack([frames_of("30")] * 4))
    assert not finer_cuts_wanted(merged, frames_of("8"))  # as many digits: no
    assert not finer_cuts_wanted(merged, None)  # no line reader: no
    assert finer_cuts_wanted(read_number(segmented, np.full((3, 10), 0.1, np.float32)), frames_of("8"))  # none found


async def test_read_looks_again_where_the_line_reader_counts_more_digits(tmp_path, loader):
    # a 7 and a 1 touching, one piece narrower than a digit may be: the first look offers it whole only, the
    # classifier (every candidate a 7) reads one digit; the line reader reads two, so the image is cut again
    # with narrower pieces cut too, and the second look's candidates go to the same version
    gray, _ = touching(0, 2)
    async with client_reading_lines_as(tmp_path, loader, "77") as http:
        (model,) = loader.loaded.values()
        calls = len(model.sizes)  # after the version's warm-up
        response = await http.post("/read", files={"image": ("pair.png", png(gray), "image/png")})
    assert response.status_code == 200, response.text
    assert response.json()["readings"][0]["text"] == "77"
    finer = segment_number(png(gray), wide_piece=FINER_WIDE_PIECE)
    assert model.sizes[calls] == 1 and sum(model.sizes[calls + 1 :]) == len(finer.candidates) > 1  # whole, then cut
    assert model.line_sizes == [PHASES]  # the line is read once
