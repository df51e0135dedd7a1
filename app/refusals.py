"""Versions refused as broken, remembered by their files (app.repository's bookkeeping): a refused version is not
loaded again, by the poller or for a request pinning it, until its files change; the poller waits until they have
stood still for a poll. What is remembered is a folder's `stamp`, which also tells a loaded version's files changed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.errors import ModelNotFound

log = logging.getLogger("lenet.repository")

Stamp = tuple[int, int, int, int]  # a version folder's files, as `stamp` sees them


def stamp(path: Path) -> Stamp:
    """What a version folder's files are, cheaply: the folder's inode, and its files' count, sizes and latest change.
    Another export under the same number differs in one of them (file times are coarse: a jiffy)."""
    try:
        stats = [p.stat() for p in [path, *path.rglob("*")]]
    except OSError:
        return (0, 0, 0, 0)
    return (stats[0].st_ino, len(stats), sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats))


@dataclass
class _Refused:
    stamp: Stamp  # the version folder's files when it was refused: a changed folder is tried again
    reason: str
    seen: Stamp | None = None  # the files as the poller last saw them changed: tried once they stand still a poll


class Refusals:
    """The refused versions of a repository at `root`; `told(name, version, reason)` hears of each refusal."""

    def __init__(self, root: Path, told: Callable[[str, int, str], None]) -> None:
        self.root = root
        self._told = told
        self._refused: dict[tuple[str, int], _Refused] = {}

    def refuse(self, name: str, number: int, path: Path, reason: str) -> None:
        # Clients see the reason (GET /models, a pinned request's 404): name the version, never a server path.
        for where in {str(path.resolve()), str(path)}:
            reason = reason.replace(where, f"{name}/{number}")
        for where in {str(self.root.resolve()), str(self.root)}:
            reason = reason.replace(where, "<models>")
        self._refused[(name, number)] = _Refused(stamp(path), reason)
        log.error("refused %s version %d: %s", name, number, reason)
        self._told(name, number, reason)

    def forget(self, name: str, number: int) -> None:
        """A version mended since it was refused, now loaded: its reason is no longer true."""
        self._refused.pop((name, number), None)

    def reason(self, name: str, number: int) -> str | None:
        refused = self._refused.get((name, number))
        return None if refused is None else refused.reason

    def holds(self, name: str, number: int, path: Path) -> bool:
        """Whether the version was refused and its files have not changed since."""
        refused = self._refused.get((name, number))
        return refused is not None and refused.stamp == stamp(path)

    def settled(self, name: str, number: int, path: Path) -> bool:
        """For the poller: whether a version refused as broken, whose files changed since, has them as the poll before
        saw them. Still changing (a copy under way, `cp -r` rather than written aside and renamed), it waits: tried
        once its files stand still, not refused again, an error logged and counted, at every poll until the copy ends."""
        refused = self._refused.get((name, number))
        if refused is None:
            return True
        now = stamp(path)
        settled, refused.seen = now == refused.seen, now
        return settled

    def check(self, name: str, number: int, path: Path) -> None:
        """ModelNotFound, with the reason, for a version refused whose files have not changed since: a request pinning
        it is not worth a load (a whole SavedModel, under the repository's lock, for anyone who asks)."""
        if self.holds(name, number, path):
            raise self.broken(name, number)

    def broken(self, name: str, number: int) -> ModelNotFound:
        return ModelNotFound(f"model {name!r} version {number} is broken: {self.reason(name, number)}")
