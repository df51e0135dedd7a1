"""A closer look at a number written small in a large upload (app.imaging.closer), and a region of an upload read as if
it were the upload (segment_number(..., region=)), with no model: where the region is, and where its boxes are."""

from __future__ import annotations

from app.imaging import closer
from app.imaging.reading import ReadDigit, Reading
from app.imaging.segment import Segmented, segment_number
from tests.app.number_helpers import boxes_of, near, whole_boxes, whole_frame


def _read_at(boxes: list[tuple[int, int, int, int]]) -> Reading:
    return Reading([ReadDigit(7, 0.9, box) for box in boxes])


def test_small_writing_in_a_large_upload_is_looked_at_closer_around_its_digits():
    # 4032x3024 read in a 1008-pixel work frame (4 upload pixels each): digits 60 pixels tall are 15 there.
    first = Segmented(scale=(4.0, 4.0), area=(0, 0, 4032, 3024))
    boxes = [(1000, 2000, 40, 60), (1060, 1995, 45, 62), (1120, 2004, 30, 58)]
    left, top, width, height = closer.region(first, _read_at(boxes)) or (0, 0, 0, 0)
    around = closer.AROUND * 62
    assert (left, top) == (1000 - around, 1995 - around)
    assert (left + width, top + height) == (1150 + around, 2062 + around)


def test_the_closer_look_stays_within_the_part_of_the_upload_read_first():
    # A sheet on a desk is read from its page (app.imaging.page): a region reaching past it took in the page's edge, read
    # as a 1 (an outside check's "3062" read "306211", "990380" read "1990380").
    first = Segmented(scale=(4.0, 4.0), area=(900, 1900, 2000, 800))
    boxes = [(1000, 2000, 40, 60), (1060, 1995, 45, 62), (1120, 2004, 30, 58)]
    left, top, width, height = closer.region(first, _read_at(boxes)) or (0, 0, 0, 0)
    assert (left, top) == (900, 1900)  # not 1000 - 124 and 1995 - 124
    assert (left + width, top + height) == (1150 + closer.AROUND * 62, 2062 + closer.AROUND * 62)


def test_writing_large_enough_or_an_upload_with_no_more_pixels_is_not_looked_at_again():
    boxes = [(1000, 2000, 100, 160), (1120, 2000, 100, 160)]  # 40 work pixels tall
    assert closer.region(Segmented(scale=(4.0, 4.0), area=(0, 0, 4032, 3024)), _read_at(boxes)) is None
    small = [(100, 200, 20, 24), (130, 200, 20, 24)]  # the upload is its work frame
    assert closer.region(Segmented(scale=(1.0, 1.0), area=(0, 0, 900, 600)), _read_at(small)) is None
    assert closer.region(Segmented(scale=(4.0, 4.0), area=(0, 0, 4032, 3024)), Reading([])) is None
    # digits small, but spread over most of the frame: a closer look would have no more pixels per digit
    spread = [(100, 200, 20, 60), (3900, 2900, 20, 60)]
    assert closer.region(Segmented(scale=(2.0, 2.0), area=(0, 0, 4032, 3024)), _read_at(spread)) is None


def test_a_region_of_a_whole_frame_is_read_at_full_size_with_its_boxes_in_the_uploads_pixels():
    data, placed = whole_frame([0, 1, 2, 3], seed=3, height=40)  # 7 2 1 0, 40 pixels tall in a 3024x2268 JPEG
    expected = boxes_of(placed)
    x, y = expected[0][0] - 100, expected[0][1] - 100
    region = (x, y, expected[-1][0] + expected[-1][2] + 100 - x, 240)
    assert segment_number(data).scale == (3024 / 1024, 3024 / 1024)  # the whole frame: brought to 1,024 pixels
    segmented = segment_number(data, region=region)
    assert segmented.scale == (1.0, 1.0)  # the region: the upload's own pixels
    found = whole_boxes(segmented)
    assert len(found) == 4
    assert all(near(box, box_drawn, 4) for box, box_drawn in zip(found, expected)), (found, expected)
