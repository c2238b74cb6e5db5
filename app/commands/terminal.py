"""What `timetabler solve` shows in a terminal: a live progress line, then a cost table."""

from __future__ import annotations

import shutil
from typing import TextIO

from saga.events import ProgressEvent
from saga.jobs import JobOutcome
from solver.evaluate import HARD, SOFT, Cost

BAR_CHARS = 24


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes:d}:{secs:02d}"


def progress_line(event: ProgressEvent) -> str:
    filled = int(event.overall_progress / 100 * BAR_CHARS)
    bar = "#" * filled + "." * (BAR_CHARS - filled)
    best = f"best {event.best.hard} hard / {event.best.soft} soft" if event.best else "best -"
    stage = event.stage or event.status
    return f"[{bar}] {event.overall_progress:5.1f}%  {stage:<16} ETA {_clock(event.eta_seconds)}  {best}"


class ProgressBar:
    """An EventSink drawing one line in place on a terminal; elsewhere (a log, a pipe)
    it prints a line per stage change instead of a redraw per event."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._stage: str | None = None

    async def publish(self, event: ProgressEvent) -> None:
        line = progress_line(event)
        if self._tty:
            width = shutil.get_terminal_size().columns - 1
            self._out.write("\r" + line[:width].ljust(width))
            if event.terminal:
                self._out.write("\n")
        elif event.stage != self._stage or event.terminal:
            self._out.write(line + "\n")
        self._stage = event.stage
        self._out.flush()


class Outcome:
    """A ResultSink keeping the one outcome of a command-line run."""

    def __init__(self) -> None:
        self.value: JobOutcome | None = None

    async def save_result(self, outcome: JobOutcome) -> None:
        self.value = outcome


def cost_table(cost: Cost) -> str:
    rows = [(name.replace("_", " "), "hard", getattr(cost, name)) for name in HARD]
    rows += [(name.replace("_", " "), "soft", getattr(cost, name)) for name in SOFT]
    rows += [("total hard violations", "", cost.hard), ("total soft cost", "", cost.soft)]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {kind:<4}  {value:>6}" for name, kind, value in rows)
