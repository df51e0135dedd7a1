"""The model repository: versions on disk (models/<name>/<integer>/), loading, warm-up, polling,
and atomic swaps. Each loaded version owns one MicroBatcher; a swap retires the old batcher,
which answers what it already queued and then stops, so no request fails because of a swap."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from app.batching import BatcherClosed, BatchObserver, MicroBatcher
from app.config import Settings
from app.errors import REASON_LENGTH, BrokenModel, ModelNotFound, ModelNotReady, brief
from app.refusals import Refusals, Stamp, stamp
from training import layout  # the folder layout: plain files, no TensorFlow

log = logging.getLogger("lenet.repository")

MAX_PINNED = 4  # older versions loaded on request (?version=N), kept at most


class DigitModel(Protocol):
    def predict(self, batch: np.ndarray) -> np.ndarray: ...
    def read_lines(self, lines: np.ndarray) -> np.ndarray | None: ...
    def warm_up(self, batch_sizes: list[int], repeats: int) -> None: ...
    def close(self) -> None: ...


Loader = Callable[[Path], DigitModel]


@dataclass(eq=False)
class ServedVersion:
    name: str
    version: int
    path: Path
    metadata: dict[str, object]
    model: DigitModel
    batcher: MicroBatcher
    stamp: Stamp  # its folder's files when they were loaded (refusals.stamp): changed since, it is loaded again
    retired: bool = False
    line_reads: int = 0  # line readings in flight (they do not go through the batcher): closing waits for them
    lines_idle: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class RepositoryEvents:
    """Hooks for metrics and logs; the defaults do nothing."""

    loaded: Callable[[str, int], None] = lambda name, version: None
    unloaded: Callable[[str], None] = lambda name: None
    refused: Callable[[str, int, str], None] = lambda name, version, reason: None
    observer: Callable[[str], BatchObserver] = field(default=lambda name: BatchObserver())


class ModelRepository:
    def __init__(
        self,
        settings: Settings,
        loader: Loader,
        executor: Executor | None = None,
        events: RepositoryEvents | None = None,
    ) -> None:
        self.settings = settings
        self.root = Path(settings.models_dir)
        self._loader = loader
        self._executor = executor
        self._events = events or RepositoryEvents()
        self._latest: dict[str, ServedVersion] = {}
        self._pinned: OrderedDict[tuple[str, int], ServedVersion] = OrderedDict()
        self._refusals = Refusals(self.root, self._events.refused)
        self._loading: set[tuple[str, int]] = set()
        # Models an admin unloaded (POST /v2/repository/models/{name}/unload): nothing of them serves, and the
        # poller leaves them alone, until a load. Kept in memory only: a restart serves every model again.
        self._unloaded: set[str] = set()
        self._lock = asyncio.Lock()  # one load or swap at a time
        self._poll_task: asyncio.Task[None] | None = None

    # ----- reading -----
    def model_names(self) -> list[str]:
        return layout.model_names(self.root)

    def versions(self, name: str) -> dict[int, Path]:
        """The versions of a model named in a request; ModelNotFound for a name that is not a model here."""
        try:
            return layout.version_dirs(self.root, name)
        except layout.InvalidModelName:
            raise ModelNotFound(f"no model {name[:80]!r}") from None

    def version_path(self, name: str, version: int) -> Path:
        path = self.versions(name).get(version)
        if path is None:
            digits = str(version)
            shown = digits if len(digits) <= 20 else f"{digits[:20]}... ({len(digits)} digits)"
            raise ModelNotFound(f"model {name!r} has no version {shown}")
        return path

    def metadata(self, name: str, version: int) -> dict[str, object]:
        try:
            return layout.read_metadata(self.version_path(name, version))
        except layout.MetadataError as exc:
            raise ModelNotFound(str(exc)) from None

    def report_figure(self, name: str, version: int, figure: str) -> Path:
        path = self.version_path(name, version) / layout.REPORT_DIR / figure
        if path.parent.parent != self.version_path(name, version) or not path.is_file():
            raise ModelNotFound(f"model {name!r} version {version} has no {figure}")
        return path

    async def can_answer(self, name: str, version: int | None) -> bool:
        """Whether a request for this model (and version) would be answered now: the version serves, or is
        pinned, or loads on this call (as the request would load it); False when loading or refused."""
        try:
            await self.resolve(name, version)
        except ModelNotReady:
            return False
        except ModelNotFound:
            if version is not None and version in self.versions(name):
                return False  # on disk, but refused (broken)
            raise
        return True

    def is_unloaded(self, name: str) -> bool:
        return name in self._unloaded

    def serving(self, name: str) -> ServedVersion | None:
        return self._latest.get(name)

    def reading_model(self) -> str:
        """The model POST /read uses when a request names none: the reading model while it is served."""
        return self.settings.read_model if self.settings.read_model in self._latest else self.settings.default_model

    @property
    def ready(self) -> bool:
        return self.settings.default_model in self._latest

    def not_ready(self) -> ModelNotReady:
        """Why this replica is not ready (readiness probes' 503): the default model unloaded by an admin, which only a
        load brings back; no version of it in the repository; every version refused as broken; or not loaded and
        warmed up yet."""
        name = self.settings.default_model
        if name in self._unloaded:
            return unloaded_error(name, f"the default model {name!r}")
        versions = layout.version_numbers(self.root, name)
        if not versions:
            return ModelNotReady(
                f"the default model {name!r} has no version in the model repository (LENET_MODELS_DIR): train one "
                "(python -m training train) or copy one in"
            )
        return self._unserved(name, f"the default model {name!r}", versions)

    def _unserved(self, name: str, what: str, versions: list[int]) -> ModelNotReady:
        """Why a model with `versions` on disk serves none (`what` names it): each refused, with its reason; else not
        loaded yet (then worth a retry)."""
        refused = [
            f"version {n} cannot load ({reason})" for n in versions if (reason := self._refusals.reason(name, n))
        ]
        if versions and len(refused) == len(versions):
            return ModelNotReady(f"{what}: {'; '.join(refused)}")
        return ModelNotReady(f"{what} is not loaded and warmed up yet", headers={"Retry-After": "1"})

    def describe(self) -> list[dict[str, object]]:
        """Every model and version on disk with its metadata, which version is serving, which others are loaded
        (for pinned requests) or loading, and whether the model was unloaded."""
        models: list[dict[str, object]] = []
        for name in self.model_names():
            serving = self._latest.get(name)
            versions: list[dict[str, object]] = []
            for number, path in sorted(self.versions(name).items()):
                try:
                    meta = layout.read_metadata(path)
                except layout.MetadataError:
                    meta = {}
                refused = self._refusals.reason(name, number)
                versions.append(
                    {
                        "version": number,
                        "state": (
                            "serving"
                            if serving and serving.version == number
                            else "loaded"
                            if (name, number) in self._pinned
                            else "loading"
                            if (name, number) in self._loading
                            else "refused"
                            if refused
                            else "rejected"
                            if meta.get("rejected")
                            else "available"
                        ),
                        "test_accuracy": meta.get("test_accuracy"),
                        "parameters": meta.get("parameters"),
                        "architecture": meta.get("architecture"),
                        "created": meta.get("created"),
                        **({"refused_reason": refused} if refused else {}),
                    }
                )
            models.append(
                {
                    "name": name,
                    "serving_version": serving.version if serving else None,
                    "default": name == self.settings.default_model,
                    "unloaded": name in self._unloaded,
                    "versions": versions,
                }
            )
        return models

    # ----- loading and swapping -----
    async def start(self) -> None:
        await self.poll_once()
        self._poll_task = asyncio.get_running_loop().create_task(self._poll_forever(), name="repository-poll")

    async def close(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()
            await asyncio.gather(self._poll_task, return_exceptions=True)
        for served in [*self._latest.values(), *self._pinned.values()]:
            await self._retire(served, wait=True)
        self._latest.clear()
        self._pinned.clear()

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            try:
                await self.poll_once()
            except Exception:  # a bad scan must never stop the watcher
                log.exception("repository poll failed")

    async def poll_once(self) -> None:
        """Serve the highest good version of every model; refuse broken ones, keep the current one. As TensorFlow
        Serving, what is served follows the disk: a version whose folder is gone is unloaded, one whose files changed
        (a version removed and its number taken by a later export) is loaded again, and a model with no version left
        is no longer served."""
        async with self._lock:
            for name in sorted({*self.model_names(), *self._latest, *(name for name, _ in self._pinned)}):
                if name not in self._unloaded:
                    versions = self.versions(name)
                    self._drop_pinned_gone(name, versions)
                    await self._serve_best(name, versions, polling=True)

    async def _serve_best(self, name: str, versions: dict[int, Path] | None = None, polling: bool = False) -> None:
        """Serve the highest version that loads (under the lock); the served one stays while it is on disk as loaded.
        `polling`: the poller's pass, which waits for a refused version's changed files to stand still (an admin's load
        tries them at once)."""
        versions = self.versions(name) if versions is None else versions
        current = self._latest.get(name)
        gone = current is not None and _changed(current, versions)
        for number in sorted(versions, reverse=True):
            if current is not None and not gone:
                if number == current.version:
                    break  # already serving the best available
                if number < current.version:
                    break  # never roll back while the served version is still on disk
            if self._refusals.holds(name, number, versions[number]) or (
                polling and not self._refusals.settled(name, number, versions[number])
            ):
                continue
            served = await self._load(name, number, versions[number])
            if served is not None:
                self._swap(name, served)
                return
        if current is not None and gone:  # its files are gone and no other version loads: nothing to serve
            del self._latest[name]
            self._events.unloaded(name)
            log.warning(
                "%s: version %d left the repository and no other version loads; not served", name, current.version
            )
            asyncio.get_running_loop().create_task(self._retire(current, wait=True))

    def _drop_pinned_gone(self, name: str, versions: dict[int, Path]) -> None:
        """Unload the versions of `name` loaded for pinned requests whose files left the repository or changed."""
        for key in [key for key, served in self._pinned.items() if key[0] == name and _changed(served, versions)]:
            served = self._pinned.pop(key)
            log.info("%s: version %d changed on disk; unloaded", name, served.version)
            asyncio.get_running_loop().create_task(self._retire(served, wait=True))

    async def load(self, name: str) -> ServedVersion:
        """Serve `name` now (the repository extension's load): its highest version that loads, as the poller
        would pick it, and the poller keeps it up to date from then on. Versions refused as broken are tried
        again only if their files changed. ModelNotFound, with each version's reason, when none loads."""
        versions = self.versions(name)
        if not versions:
            raise ModelNotFound(f"no model {name!r} with a version in the repository")
        async with self._lock:
            self._unloaded.discard(name)
            await self._serve_best(name)
        served = self._latest.get(name)
        if served is None:
            reasons = "; ".join(
                f"version {number}: {reason}"
                for number in sorted(versions, reverse=True)
                if (reason := self._refusals.reason(name, number))
            )
            raise ModelNotFound(f"model {name!r} could not be loaded ({reasons or 'no version loads'})")
        return served

    async def unload(self, name: str) -> None:
        """Stop serving `name` (the repository extension's unload): every loaded version of it is retired, the
        requests already queued are answered first, and nothing of it serves again until `load` (or a restart);
        the poller skips it meanwhile. Requests for it get 503 model_not_ready."""
        if not self.versions(name) and name not in self._latest:
            raise ModelNotFound(f"no model {name!r}")
        async with self._lock:
            self._unloaded.add(name)
            retiring = [self._latest.pop(name)] if name in self._latest else []
            for key in [key for key in self._pinned if key[0] == name]:
                retiring.append(self._pinned.pop(key))
        if retiring:
            self._events.unloaded(name)
            log.info("unloaded %s (versions %s)", name, ", ".join(str(s.version) for s in retiring))
        await asyncio.gather(*(self._retire(served, wait=True) for served in retiring))

    async def _load(self, name: str, number: int, path: Path) -> ServedVersion | None:
        settings = self.settings
        sizes = sorted({1, settings.max_batch_size} | {2**k for k in range(1, 12) if 2**k < settings.max_batch_size})

        def load() -> tuple[DigitModel, dict[str, object]]:
            metadata = layout.read_metadata(path)
            model = self._loader(path)
            model.warm_up(sizes, settings.warmup_batches)
            return model, metadata

        self._loading.add((name, number))
        files = stamp(path)  # before the load: files that change during it are loaded again at the next poll
        try:
            model, metadata = await asyncio.to_thread(load)
        except BrokenModel as exc:
            self._refusals.refuse(name, number, path, str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - a broken folder can raise anything: refuse the version, keep serving
            self._refusals.refuse(name, number, path, f"{type(exc).__name__}: {brief(str(exc), REASON_LENGTH)}")
            return None
        finally:
            self._loading.discard((name, number))
        batcher = MicroBatcher(
            model.predict,
            max_batch_size=settings.max_batch_size,
            max_delay_s=settings.max_delay_s,
            max_queue_images=settings.max_queue_images,
            timeout_s=settings.request_timeout_s,
            executor=self._executor,
            observer=self._events.observer(name),
        )
        batcher.start()
        self._refusals.forget(name, number)
        log.info("loaded %s version %d from %s", name, number, path)
        return ServedVersion(name, number, path, metadata, model, batcher, files)

    def _swap(self, name: str, served: ServedVersion) -> None:
        old = self._latest.get(name)
        self._latest[name] = served  # one assignment: new requests see the new version from here on
        self._events.loaded(name, served.version)
        if old is not None:
            log.info("%s: version %d replaces %d", name, served.version, old.version)
            asyncio.get_running_loop().create_task(self._retire(old, wait=True))

    async def _retire(self, served: ServedVersion, wait: bool) -> None:
        served.retired = True
        served.batcher.retire()
        if wait:
            await served.batcher.closed.wait()
            while served.line_reads:
                served.lines_idle.clear()
                await served.lines_idle.wait()
            served.model.close()

    # ----- predicting -----
    async def resolve(self, name: str | None, version: int | None) -> ServedVersion:
        name = name or self.settings.default_model
        if name in self._unloaded:
            raise unloaded_error(name, f"model {name!r}")
        latest = self._latest.get(name)
        if version is None or (latest is not None and latest.version == version):
            if latest is None:
                if versions := sorted(self.versions(name)):
                    raise self._unserved(name, f"model {name!r}", versions)
                available = [model for model in self.model_names() if self.versions(model)]  # not emptied folders
                raise ModelNotFound(f"no model {name!r}; available: {', '.join(available) or 'none'}")
            return latest
        return await self._pinned_version(name, version)

    async def _pinned_version(self, name: str, version: int) -> ServedVersion:
        key = (name, version)
        if key in self._pinned:
            self._pinned.move_to_end(key)
            return self._pinned[key]
        path = self.version_path(name, version)
        self._refusals.check(name, version, path)
        async with self._lock:
            if name in self._unloaded:  # unloaded while this request waited for the lock
                raise ModelNotReady(f"model {name!r} is unloaded")
            if key not in self._pinned:
                self._refusals.check(name, version, path)  # refused by a load this request waited for
                served = await self._load(name, version, path)
                if served is None:
                    raise self._refusals.broken(name, version)
                self._pinned[key] = served
                while len(self._pinned) > MAX_PINNED:
                    _, evicted = self._pinned.popitem(last=False)
                    asyncio.get_running_loop().create_task(self._retire(evicted, wait=True))
            return self._pinned[key]

    async def read_lines(self, served: ServedVersion, lines: np.ndarray) -> np.ndarray | None:
        """The version's CTC log-probabilities for whole number lines (app.imaging.line), on the inference
        thread; None when the version has no line reader, was closed since its candidates were read (a swap),
        or failed (logged). A version being retired is closed only once no line reading is in flight."""
        if not len(lines):
            return None
        served.line_reads += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, served.model.read_lines, lines)
        except Exception:  # the classifier's reading stands without it: the request still answers
            log.exception(
                "%s version %d: reading lines failed; read without the line reader", served.name, served.version
            )
            return None
        finally:
            served.line_reads -= 1
            if not served.line_reads:
                served.lines_idle.set()

    def admit(self, name: str | None) -> None:
        """Shed load early: QueueFull if the serving version's queue is already at its bound."""
        served = self._latest.get(name or self.settings.default_model)
        if served is not None:
            served.batcher.admit()

    async def predict(
        self, name: str | None, version: int | None, images: np.ndarray, deadline: float | None = None
    ) -> tuple[ServedVersion, np.ndarray]:
        """Probabilities from the version that served them. A swap between resolving and queueing
        is invisible: the retired batcher still answers, and a closed one makes us resolve again."""
        for _ in range(3):
            served = await self.resolve(name, version)
            try:
                return served, await served.batcher.predict(images, deadline)
            except BatcherClosed:
                continue
        raise ModelNotReady("the model was being replaced; retry")


def unloaded_error(name: str, what: str) -> ModelNotReady:
    """The answer for a model an admin unloaded (`what`: how the request named it): only a load brings it back."""
    return ModelNotReady(f"{what} is unloaded; an admin can load it: POST /v2/repository/models/{name}/load")


def _changed(served: ServedVersion, versions: dict[int, Path]) -> bool:
    """Whether a loaded version's folder left the repository or its files changed since they were loaded."""
    path = versions.get(served.version)
    return path is None or stamp(path) != served.stamp
