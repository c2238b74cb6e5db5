"""One solver child process, seen from the event loop: start it, read its messages
without blocking the loop, ask it to stop, kill it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass

from saga.child import GROUP_SIGNALS, ChildTask, readable_error, run_child
from solver import kernel

_SPAWN = multiprocessing.get_context("spawn")
# Seconds a dead child may take to be reaped before its exit is described as "not answering".
REAP_GRACE = 0.5


def warm_solver() -> None:
    """Compile the search kernel, or load it from its disk cache, in a process of its own:
    on a fresh install the first job would otherwise spend half a minute of its time
    budget compiling, deaf to a stop request. A plain interpreter (not a spawned
    multiprocessing child: it is no job's solver), in a session of its own (Ctrl-C on the
    service is not for it), quiet (best effort: a job that cannot load the kernel reports it)."""
    warming = subprocess.Popen([sys.executable, "-c", f"from {kernel.__name__} import warm_up; warm_up()"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    threading.Thread(target=warming.wait, daemon=True, name="kernel-warm-up").start()  # reaps it


@dataclass(frozen=True)
class PipeClosed:
    """The child's end of the pipe is gone: it exited or was killed."""


@dataclass(frozen=True)
class ReaderFailed:
    """The reader thread could not take a message from the pipe (not EOF): e.g. one that
    does not unpickle. Nothing more will arrive; the job must end, not wait forever."""

    message: str


class ChildHandle:
    def __init__(self, task: ChildTask, name: str) -> None:
        self._recv, self._send = _SPAWN.Pipe(duplex=False)
        self._stop = _SPAWN.Event()
        self._process = _SPAWN.Process(
            target=run_child, args=(self._send, self._stop, task, os.getpid()), name=name, daemon=True
        )
        self._messages: asyncio.Queue[object] = asyncio.Queue()
        self._starting: asyncio.Future[None] | None = None
        self._reaped: asyncio.Future[None] | None = None

    async def start(self) -> None:
        # Spawning writes the pickled task into the new process: do it off the loop. The
        # thread finishes (and the reaper is set up) even if this await is cancelled.
        loop = asyncio.get_running_loop()
        self._reaped = loop.create_future()
        self._starting = asyncio.ensure_future(asyncio.to_thread(self._start, loop))
        await asyncio.shield(self._starting)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        # The child is born with GROUP_SIGNALS blocked (a thread's mask survives fork and exec),
        # so a Ctrl-C reaching the process group while it is still importing cannot become a
        # KeyboardInterrupt there; run_child then ignores them for good.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, GROUP_SIGNALS)
        try:
            self._process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self._send.close()  # only the child writes; its exit then shows as EOF here
        name = self._process.name
        threading.Thread(target=self._read, args=(loop,), daemon=True, name=f"{name}-reader").start()
        threading.Thread(target=self._reap, args=(loop,), daemon=True, name=f"{name}-reaper").start()

    async def next_messages(self) -> list[object]:
        """Wait for the next message, then take all that are already there."""
        batch = [await self._messages.get()]
        while not self._messages.empty():
            batch.append(self._messages.get_nowait())
        return batch

    def request_stop(self) -> None:
        self._stop.set()

    async def exit_description(self) -> str:
        """Why the child ended, in words; waits briefly for it to be reaped."""
        if not await self._wait_reaped(REAP_GRACE):
            return "The solver process stopped answering."
        code = self._process.exitcode or 0
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (possibly out of memory)" if -code == signal.SIGKILL else ""
            return f"The solver process was killed by {name}{hint}."
        return f"The solver process exited unexpectedly with code {code}."

    async def kill(self, patience: float = 0.0) -> None:
        """Give it `patience` seconds to exit, then SIGKILL it (it ignores SIGTERM, see
        GROUP_SIGNALS, and has nothing to clean up); returns once reaped."""
        if self._starting is None:
            return
        try:
            await asyncio.shield(self._starting)
        except Exception:  # it never started; the failure is reported where start() was awaited
            return
        if await self._wait_reaped(patience):
            return
        self._process.kill()
        await asyncio.shield(self._reaped)

    async def _wait_reaped(self, timeout: float) -> bool:
        assert self._reaped is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._reaped), timeout)
        except TimeoutError:
            return False
        return True

    def _reap(self, loop: asyncio.AbstractEventLoop) -> None:
        """Reaper thread: the only place that waits on the process."""
        self._process.join()
        try:
            loop.call_soon_threadsafe(self._set_reaped)
        except RuntimeError:  # the loop is closed
            pass

    def _set_reaped(self) -> None:
        if self._reaped is not None and not self._reaped.done():
            self._reaped.set_result(None)

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        """Reader thread: blocking receives, handed to the loop thread-safely. It never dies
        silently: whatever ends it becomes a last message the runner acts on."""
        while True:
            try:
                msg: object = self._recv.recv()
            except (EOFError, OSError):
                msg = PipeClosed()
            except Exception as exc:  # e.g. a message that does not unpickle, MemoryError
                msg = ReaderFailed(readable_error(exc))
            try:
                loop.call_soon_threadsafe(self._messages.put_nowait, msg)
            except RuntimeError:  # the loop is closed; nobody is listening any more
                break
            if isinstance(msg, (PipeClosed, ReaderFailed)):
                break
        self._recv.close()
