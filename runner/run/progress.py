"""What `signoff run` prints while stages execute.

Plain timestamped lines always (a scheduler's log needs nothing else); on a
terminal, also one status line redrawn in place with each running stage's
cell count.  In a notebook (``runner.signoff``), one live table instead, updated
in place: each stage's state and the latest line.  While a run folder is open the
same lines go to its ``run.log``.  Stages run in threads, so every write holds one lock.
"""

from __future__ import annotations

import html
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, redact: Callable[[str], str] = str, notebook: bool = False):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.lock = threading.Lock()
        self.cells: dict[str, list[int]] = {}
        self.redact = redact  # a stage's error message may quote a secret
        self.log: TextIO | None = None
        self.board = Board() if notebook else None

    @contextmanager
    def recording(self, path: Path) -> Iterator[None]:
        with path.open("a", encoding="utf-8") as log:
            self.log = log
            try:
                yield
            finally:
                with self.lock:
                    self.log = None

    def line(self, text: str, stage: str = "signoff", level: str = "INFO") -> None:
        """One log line: timestamp, level, stage, message."""
        record = f"{level:<7} {stage:<10} {self.redact(text)}"
        with self.lock:
            if self.board:
                self.board.said(stage, self.redact(text), level)
                if self.log:
                    self.log.write(f"{_utc_now()} {record}\n")
                    self.log.flush()
                return
            self._clear()
            stamp = time.strftime("%H:%M:%S") if self.live else _utc_now()
            self.stream.write(f"{stamp} {record}\n")
            self._draw()
            self.stream.flush()
            if self.log:
                self.log.write(f"{_utc_now()} {record}\n")
                self.log.flush()

    def started(self, stage: str, total_cells: int) -> None:
        with self.lock:
            self.cells[stage] = [0, total_cells]
        self.line("started", stage)

    def cell_done(self, stage: str) -> None:
        with self.lock:
            self.cells[stage][0] += 1
            if self.board:
                self.board.cells(stage, *self.cells[stage])
                return
            self._clear()
            self._draw()
            self.stream.flush()

    def finished(self, stage: str, status: str, seconds: float, error: str | None = None) -> None:
        with self.lock:
            self.cells.pop(stage, None)
        detail = f": {error}" if error else ""
        self.line(f"{status} in {seconds:.1f} s{detail}", stage, "INFO" if status == "passed" else "ERROR")

    def _clear(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")

    def _draw(self) -> None:
        if self.live and self.cells:
            running = "  ".join(f"{s} {done}/{total} cells" for s, (done, total) in self.cells.items())
            self.stream.write(f"running: {running}")


class Board:
    """The notebook's view of a run: one table, redrawn in place (IPython's display handle), a row per stage
    with what it is doing, and the run's latest line beneath."""

    REDRAW_EVERY = 0.25  # seconds between redraws for cell counts alone

    def __init__(self) -> None:
        from IPython.display import HTML, display

        self.html, self.rows, self.latest, self.drawn = HTML, {}, "", 0.0
        self.handle = display(HTML("<i>starting Signoff</i>"), display_id=True)

    def said(self, stage: str, text: str, level: str) -> None:
        if stage == "signoff":
            self.latest = text
        else:
            self.rows[stage] = f"{text} ({level.lower()})" if level != "INFO" else text
        self._draw()

    def cells(self, stage: str, done: int, total: int) -> None:
        self.rows[stage] = f"running: {done}/{total} cells"
        if time.monotonic() - self.drawn >= self.REDRAW_EVERY:
            self._draw()

    def _draw(self) -> None:
        rows = "".join(f"<tr><td><b>{html.escape(stage)}</b></td><td>{html.escape(state)}</td></tr>"
                       for stage, state in self.rows.items())
        self.handle.update(self.html(f"<table>{rows}</table><div>{html.escape(self.latest)}</div>"))
        self.drawn = time.monotonic()


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
