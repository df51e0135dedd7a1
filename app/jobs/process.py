"""The training process: started in its own session and process group, holding a lock on its job
folder for as long as it lives, and awaited (never polled) until it exits.

After a restart of the service a job's process, if it still runs, is no child of this one: it cannot
be awaited with waitpid and has no exit status for us. The lock tells whether it still runs (and that
the pid was not reused: only our training holds the lock); a pidfd (Linux 5.3+) becomes readable when
it exits, which the event loop awaits like any socket. Where pidfd_open is missing the service cannot
follow such a process; the supervisor then stops it and fails the job (see TrainingJobs.start)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
from pathlib import Path
from typing import Protocol

from app.config import environment_without_secrets

LOCK_FILE = "lock"


async def spawn(argv: list[str], folder: Path, log_path: Path) -> asyncio.subprocess.Process:
    """Start `argv` with stdout and stderr into `log_path`; the child inherits the job's lock."""
    with open(folder / LOCK_FILE, "w") as lock, open(log_path, "ab") as log_file:  # noqa: ASYNC230 (local, instant)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The child's copy of this descriptor keeps the lock until it exits (flock belongs to the open file).
        return await asyncio.create_subprocess_exec(
            *argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(lock.fileno(),),
            env=environment_without_secrets(),
        )  # its own process group: a stop reaches all of it


def lock_held(folder: Path) -> bool:
    """Whether the job's training process still runs (it holds the lock for its whole life)."""
    try:
        with open(folder / LOCK_FILE, "r+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


def signal_group(pid: int | None, signum: int) -> None:
    if pid is not None:
        try:
            os.killpg(pid, signum)  # pid is the group's id: start_new_session made it a group leader
        except (ProcessLookupError, PermissionError):
            pass


class ProcessExit(Protocol):
    """Awaits a training process's exit: the exit status of a child, None for an adopted process."""

    async def wait(self) -> int | None: ...

    def close(self) -> None: ...


class ChildExit:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    async def wait(self) -> int | None:
        return await self._process.wait()

    def close(self) -> None:
        pass


class AdoptedExit:
    """A process this service did not start, awaited through a pidfd. Raises OSError (or AttributeError
    where os.pidfd_open does not exist) when it cannot be followed."""

    def __init__(self, pid: int) -> None:
        self._fd: int | None = os.pidfd_open(pid)

    async def wait(self) -> int | None:
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()

        def readable() -> None:  # the pidfd turns readable when the process exits
            if not exited.done():
                exited.set_result(None)

        assert self._fd is not None
        loop.add_reader(self._fd, readable)
        try:
            await exited
        finally:
            loop.remove_reader(self._fd)
        return None  # not our child: no exit status to collect

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
