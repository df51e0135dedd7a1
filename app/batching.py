"""Micro-batching: requests queue their images; one worker per model version closes a batch at
`max_batch_size` images or `max_delay` after its first image, and runs it off the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.errors import DeadlineExceeded, QueueFull

log = logging.getLogger("lenet.batching")

PredictFn = Callable[[np.ndarray], np.ndarray]  # float32 [N,28,28,1] -> [N,10]


class BatcherClosed(Exception):
    """The batcher was retired and drained; the caller should resolve the serving version again."""


@dataclass
class BatchObserver:
    """Hooks for metrics; the defaults do nothing."""

    batch: Callable[[int, float], None] = lambda size, seconds: None  # images, model-call seconds
    queue_wait: Callable[[float], None] = lambda seconds: None
    rejected: Callable[[], None] = lambda: None


@dataclass(eq=False)
class _Item:
    images: np.ndarray  # [k,28,28,1], k <= max_batch_size
    deadline: float
    enqueued: float
    future: asyncio.Future[np.ndarray] = field(repr=False)


class MicroBatcher:
    def __init__(
        self,
        predict: PredictFn,
        *,
        max_batch_size: int,
        max_delay_s: float,
        max_queue_images: int,
        timeout_s: float,
        executor: Executor | None = None,
        observer: BatchObserver | None = None,
    ) -> None:
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.max_queue_images = max_queue_images
        self.timeout_s = timeout_s
        self._executor = executor
        self._observer = observer or BatchObserver()
        self._pending: deque[_Item] = deque()
        self._queued_images = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retired = False
        self.closed = asyncio.Event()

    @property
    def queued_images(self) -> int:
        return self._queued_images

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    def admit(self) -> None:
        """Refuse at once when the queue is already full: cheaper than reading and decoding the body first."""
        self._check_room(1)

    def _check_room(self, n: int) -> None:
        if self._queued_images + n > self.max_queue_images:
            self._observer.rejected()
            raise QueueFull(
                f"queue full ({self._queued_images} images waiting); retry shortly", headers={"Retry-After": "1"}
            )

    async def predict(self, images: np.ndarray, deadline: float | None = None) -> np.ndarray:
        """Probabilities for `images` ([n,28,28,1] float32), in order; large inputs span several batches. Queued past
        `deadline` (the event loop's clock: a request's own, from its arrival) or the timeout from now, whichever comes
        first, a DeadlineExceeded."""
        if self.closed.is_set():
            raise BatcherClosed
        n = len(images)
        self._check_room(n)
        loop = asyncio.get_running_loop()
        now = loop.time()
        until = now + self.timeout_s if deadline is None else min(deadline, now + self.timeout_s)
        if until <= now:
            raise DeadlineExceeded("the request's deadline passed before it reached the model")
        items = []
        for start in range(0, n, self.max_batch_size):
            item = _Item(images[start : start + self.max_batch_size], until, now, loop.create_future())
            items.append(item)
            self._pending.append(item)
            self._queued_images += len(item.images)
        if len(self._pending) == len(items) or self._queued_images >= self.max_batch_size:
            self._wakeup.set()
        answers = asyncio.gather(*(i.future for i in items))
        try:
            results = await asyncio.wait_for(answers, until - now + 5.0)
        except TimeoutError:
            raise DeadlineExceeded(f"no answer within {until - now + 5.0:.0f} s") from None
        except asyncio.CancelledError:  # the caller gave up (a gRPC call cancelled): its answers' cancellation is
            answers.add_done_callback(_read)  # read, not reported unread on stderr outside the JSON log
            raise
        return results[0] if len(results) == 1 else np.concatenate(results)

    def retire(self) -> None:
        """Stop once everything already queued is answered (used when a new version takes over)."""
        self._retired = True
        self._wakeup.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._pending:
                    if self._retired:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                # Wait for a full batch, or for max_delay after the oldest queued image.
                close_at = self._pending[0].enqueued + self.max_delay_s
                while self._queued_images < self.max_batch_size and not self._retired:
                    remaining = close_at - loop.time()
                    if remaining <= 0:
                        break
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                    except TimeoutError:
                        break
                await self._run_batch(self._take_batch(loop.time()))
        finally:
            self.closed.set()
            for item in self._pending:  # only on cancellation at shutdown
                if not item.future.done():
                    item.future.set_exception(BatcherClosed())

    def _take_batch(self, now: float) -> list[_Item]:
        batch: list[_Item] = []
        size = 0
        while self._pending and size + len(self._pending[0].images) <= self.max_batch_size:
            item = self._pending.popleft()
            self._queued_images -= len(item.images)
            if item.future.done():  # the caller gave up (timeout or disconnect)
                continue
            if now > item.deadline:
                item.future.set_exception(DeadlineExceeded("waited in the queue past the request deadline"))
                continue
            self._observer.queue_wait(now - item.enqueued)
            batch.append(item)
            size += len(item.images)
        return batch

    async def _run_batch(self, batch: list[_Item]) -> None:
        if not batch:
            return
        images = batch[0].images if len(batch) == 1 else np.concatenate([i.images for i in batch])
        started = time.perf_counter()
        try:
            out = await asyncio.get_running_loop().run_in_executor(self._executor, self._predict, images)
        except Exception as exc:  # the model failed: every request in the batch hears about it
            log.exception("model call on a batch of %d failed", len(images))
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        self._observer.batch(len(images), time.perf_counter() - started)
        if len(out) != len(images):
            error = RuntimeError(f"model returned {len(out)} rows for {len(images)} images")
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        offset = 0
        for item in batch:
            k = len(item.images)
            if not item.future.done():
                item.future.set_result(out[offset : offset + k])
            offset += k


def _read(future: asyncio.Future[Any]) -> None:
    """Mark a finished future's outcome as read."""
    if not future.cancelled():
        future.exception()
