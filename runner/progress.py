"""What `signoff run` prints while stages execute.

Plain timestamped lines always (a scheduler's log needs nothing else); on a
terminal, also one status line redrawn in place with each running stage's
cell count.  Stages run in threads, so every write holds one lock.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.lock = threading.Lock()
        self.cells: dict[str, list[int]] = {}

    def line(self, text: str) -> None:
        with self.lock:
            self._clear()
            self.stream.write(f"{time.strftime('%H:%M:%S')}  {text}\n")
            self._draw()
            self.stream.flush()

    def started(self, stage: str, total_cells: int) -> None:
        with self.lock:
            self.cells[stage] = [0, total_cells]
        self.line(f"{stage:<12} started")

    def cell_done(self, stage: str) -> None:
        with self.lock:
            self.cells[stage][0] += 1
            self._clear()
            self._draw()
            self.stream.flush()

    def finished(self, stage: str, status: str, seconds: float, error: str | None = None) -> None:
        with self.lock:
            self.cells.pop(stage, None)
        detail = f": {error}" if error else ""
        self.line(f"{stage:<12} {status} in {seconds:.1f} s{detail}")

    def _clear(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")

    def _draw(self) -> None:
        if self.live and self.cells:
            running = "  ".join(f"{s} {done}/{total} cells" for s, (done, total) in self.cells.items())
            self.stream.write(f"running: {running}")
