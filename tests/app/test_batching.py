from __future__ import annotations

import asyncio
import gc
import threading

import numpy as np
import pytest

from app.batching import BatcherClosed, BatchObserver, MicroBatcher
from app.errors import DeadlineExceeded, QueueFull
from tests.conftest import async_wait_until


def tagged(*tags: int) -> np.ndarray:
    """Images whose top-left pixel carries a tag, so results can be traced back to their request."""
    images = np.zeros((len(tags), 28, 28, 1), np.float32)
    images[:, 0, 0, 0] = np.asarray(tags, np.float32) / 100
    return images


class Recorder:
    """A model that answers each image with its tag in column 0 and records the batch sizes it saw."""

    def __init__(self, block: threading.Event | None = None, fail: bool = False) -> None:
        self.sizes: list[int] = []
        self.block = block
        self.fail = fail
        self.called = threading.Event()  # a batch reached the model

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.called.set()
        if self.block is not None:
            self.block.wait(5)
        if self.fail:
            raise RuntimeError("model exploded")
        self.sizes.append(len(batch))
        out = np.zeros((len(batch), 10), np.float32)
        out[:, 0] = batch[:, 0, 0, 0] * 100
        return out


def make(model, **overrides) -> MicroBatcher:
    options = {"max_batch_size": 4, "max_delay_s": 0.05, "max_queue_images": 100, "timeout_s": 5.0}
    options.update(overrides)
    batcher = MicroBatcher(model, **options)
    batcher.start()
    return batcher


async def test_concurrent_requests_share_batches_and_keep_their_results():
    model = Recorder()
    batcher = make(model)
    results = await asyncio.gather(*(batcher.predict(tagged(i)) for i in range(10)))
    assert sorted(model.sizes, reverse=True) == [4, 4, 2]
    assert [round(r[0, 0]) for r in results] == list(range(10))


async def test_a_lone_request_waits_at_most_max_delay():
    model = Recorder()
    batcher = make(model, max_delay_s=0.02)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await batcher.predict(tagged(1))
    assert model.sizes == [1]
    assert loop.time() - started < 1.0  # closed by the delay, not by waiting for a full batch


async def test_large_request_is_split_into_batches_in_order():
    model = Recorder()
    batcher = make(model, max_batch_size=4)
    out = await batcher.predict(tagged(*range(11)))
    assert max(model.sizes) <= 4 and sum(model.sizes) == 11
    assert [round(v) for v in out[:, 0]] == list(range(11))


async def test_full_queue_turns_requests_away_at_once():
    gate = threading.Event()
    rejected = []
    model = Recorder(block=gate)
    batcher = make(
        model,
        max_batch_size=2,
        max_queue_images=4,
        max_delay_s=0.0,
        observer=BatchObserver(rejected=lambda: rejected.append(1)),
    )
    first = asyncio.ensure_future(batcher.predict(tagged(1, 2)))  # taken by the worker, blocked in the model
    await async_wait_until(model.called.is_set, 5, "the worker never took the first batch")
    queued = asyncio.ensure_future(batcher.predict(tagged(3, 4, 5, 6)))  # fills the queue
    await async_wait_until(lambda: batcher.queued_images == 4, 5, "the second request was never queued")
    with pytest.raises(QueueFull) as caught:
        await batcher.predict(tagged(7))
    assert caught.value.headers == {"Retry-After": "1"} and rejected == [1]
    gate.set()
    assert len(await first) == 2 and len(await queued) == 4  # nothing accepted was lost


@pytest.mark.parametrize(
    ("timeout_s", "deadline_in"),
    [
        pytest.param(0.1, None, id="the-timeout-from-now"),
        # A request's own deadline, from its arrival (app.routes.read calls the model up to four times, after reading
        # its images): a wait in the queue past it is a 504 however much of the batcher's timeout is left.
        pytest.param(30.0, 0.1, id="a-deadline-given-with-the-images"),
    ],
)
async def test_request_queued_past_its_deadline_gets_504(timeout_s, deadline_in):
    gate = threading.Event()
    model = Recorder(block=gate)
    batcher = make(model, max_batch_size=1, max_delay_s=0.0, timeout_s=timeout_s)
    first = asyncio.ensure_future(batcher.predict(tagged(1)))
    await async_wait_until(model.called.is_set, 5, "the worker never took the first request")
    deadline = None if deadline_in is None else asyncio.get_running_loop().time() + deadline_in
    late = asyncio.ensure_future(batcher.predict(tagged(2), deadline))
    await async_wait_until(lambda: batcher.queued_images == 1, 5, "the second request was never queued")
    await asyncio.sleep(0.3)  # the behaviour under test: it stays queued past its 0.1 s deadline
    gate.set()
    await first
    with pytest.raises(DeadlineExceeded):
        await late


async def test_model_failure_reaches_every_request_in_the_batch():
    batcher = make(Recorder(fail=True))
    results = await asyncio.gather(*(batcher.predict(tagged(i)) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    ok = make(Recorder())
    assert (await ok.predict(tagged(5)))[0, 0] == pytest.approx(5)


async def test_retired_batcher_answers_what_it_queued_then_closes():
    batcher = make(Recorder(), max_delay_s=0.05)
    pending = [asyncio.ensure_future(batcher.predict(tagged(i))) for i in range(3)]
    await asyncio.sleep(0)  # one loop turn: each request runs up to its await, its image queued
    assert batcher.queued_images == 3  # queued before the retirement, still inside max_delay
    batcher.retire()
    assert [round(r[0, 0]) for r in await asyncio.gather(*pending)] == [0, 1, 2]
    await asyncio.wait_for(batcher.closed.wait(), 1)
    with pytest.raises(BatcherClosed):
        await batcher.predict(tagged(9))


@pytest.mark.parametrize(
    "images",
    [pytest.param(1, id="one-batch"), pytest.param(9, id="three-batches")],
)
async def test_a_request_cancelled_while_queued_leaves_no_unretrieved_exception(images):
    # An outside check: a gRPC call the client cancelled (tritonclient's client_timeout) cancels its handler, and each
    # left "_GatheringFuture exception was never retrieved ... CancelledError" in the server's stderr, outside its JSON
    # log. The batcher still answers the rest.
    loop = asyncio.get_running_loop()
    unhandled: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    try:
        block = threading.Event()
        model = Recorder(block)
        batcher = make(model)
        request = asyncio.create_task(batcher.predict(tagged(*range(images))))
        await async_wait_until(model.called.is_set, 5, "the batch never reached the model")
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        block.set()
        assert round((await batcher.predict(tagged(42)))[0, 0]) == 42
        del request
        gc.collect()
        await asyncio.sleep(0)
        assert not unhandled, [context.get("message") for context in unhandled]
    finally:
        loop.set_exception_handler(previous)
