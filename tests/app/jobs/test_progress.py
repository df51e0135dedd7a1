"""The progress reader (incremental, tolerant of torn and garbage lines), the progress arithmetic and
the failure cause found in a log."""

from __future__ import annotations

import json

import pytest

from app.jobs.progress import MAX_LINE_BYTES, ProgressReader, cause_in_log, job_progress


def line(**event: object) -> bytes:
    return json.dumps(event).encode() + b"\n"


@pytest.fixture
def progress(tmp_path):
    path = tmp_path / "progress.jsonl"

    def append(data: bytes) -> None:
        with path.open("ab") as handle:
            handle.write(data)

    append.path = path  # type: ignore[attr-defined]
    return append


def test_a_torn_line_is_kept_until_its_newline_arrives(progress):
    reader = ProgressReader(progress.path)
    assert reader.refresh() == 0  # no file yet
    whole = line(event="batch", epoch=1, step=3)
    progress(line(event="start") + whole[:10])
    assert reader.refresh() == 1 and reader.skipped == 0
    progress(whole[10:])
    assert reader.refresh() == 1
    assert [e["event"] for e in reader.events] == ["start", "batch"] and reader.events[1]["step"] == 3


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[1, 2]", id="json-array"),
        pytest.param(b'"text"', id="json-string"),
        pytest.param(b'{"no_event": 1}', id="object-without-event"),
        pytest.param(b'{"event": "a\\nb"}', id="event-name-not-an-identifier"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-too-deep"),
    ],
)
def test_a_line_that_is_not_an_event_is_skipped_and_counted(progress, garbage):
    reader = ProgressReader(progress.path)
    progress(line(event="start") + garbage + b"\n" + line(event="epoch", epoch=1))
    assert reader.refresh() == 2
    assert [e["event"] for e in reader.events] == ["start", "epoch"] and reader.skipped == 1


def test_only_what_was_appended_is_read(progress):
    reader = ProgressReader(progress.path)
    progress(line(event="start"))
    reader.refresh()
    size = progress.path.stat().st_size
    with progress.path.open("r+b") as handle:  # rewrite what was read already: a re-reading reader would notice
        handle.write(b"x" * (size - 1))
    progress(line(event="epoch", epoch=1))
    assert reader.refresh() == 1 and reader.skipped == 0
    assert [e["event"] for e in reader.events] == ["start", "epoch"]


def test_an_overlong_line_is_dropped_not_kept(progress):
    reader = ProgressReader(progress.path)
    progress(b"x" * (MAX_LINE_BYTES + 1))
    assert reader.refresh() == 0 and reader.skipped == 1
    progress(b"\n" + line(event="start"))
    reader.refresh()
    assert [e["event"] for e in reader.events] == ["start"]


def test_finish_counts_a_torn_last_line(progress):
    reader = ProgressReader(progress.path)
    progress(line(event="start") + b'{"event": "fin')
    reader.refresh()
    assert reader.skipped == 0
    reader.finish()
    assert reader.skipped == 1 and reader.last("start") == {"event": "start"} and reader.last("finished") is None


@pytest.mark.parametrize(
    "events,expected",
    [
        pytest.param([], {}, id="nothing-yet"),
        pytest.param([{"event": "start", "epochs": 4, "steps": 10}], {}, id="started-only"),
        pytest.param(
            [
                {"event": "epoch", "epoch": 1, "epochs": 4, "steps": 10, "val_accuracy": 0.9, "elapsed": 10},
                {"event": "batch", "epoch": 2, "epochs": 4, "step": 5, "steps": 10, "loss": 0.5, "elapsed": 15},
            ],
            {"epoch": 2, "step": 5, "fraction": 0.375, "eta_s": 25.0, "val_accuracy": 0.9, "loss": 0.5},
            id="mid-epoch",
        ),
        pytest.param(
            [{"event": "epoch", "epoch": 4, "epochs": 4, "steps": 10, "elapsed": 40}],
            {"epoch": 4, "step": 10, "fraction": 1.0, "eta_s": 0.0},
            id="last-epoch-done",
        ),
    ],
)
def test_progress_arithmetic(events, expected):
    progress = job_progress(events)
    assert {key: progress.get(key) for key in expected} == expected, progress


def test_the_cause_in_a_log_skips_tensorflow_noise():
    log = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1795956202.185599   14537 port.cc:153] oneDNN custom operations are on.",
        "I0000 00:00:1795956202.185943   14537 cudart_stub.cc:31] Could not find cuda drivers on your machine.",
        "error: /data/mnist.npz: no such file or folder (expected mnist.npz or a folder of IDX files)",
        "E0000 00:00:1795956516.436628   19249 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)",
        "",
    ]
    assert cause_in_log(log) == log[3]
    assert cause_in_log(log[:3]) is None
