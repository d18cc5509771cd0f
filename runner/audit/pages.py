"""A run's HTML pages rendered in a process of their own, each as soon as its notebook is final.

Rendering a page (nbconvert, bleach) takes a few tenths of a second of one core; a run's eight pages,
rendered after the gating report as the archive is sealed, kept one core busy for a second while the
other waited.  Here a renderer process starts with the stages (its imports done while the first kernels
start) and renders each stage's notebook when the stage finishes, on whatever core is free.  What the
pages' banner says is not known yet (the verdict, the manifest hash): they are rendered with
placeholders, filled in by :meth:`Pages.fill` once the run is sealed.  A page the renderer did not
deliver (it died, it was too slow) is rendered the usual way by the caller: this only moves work.

    python -m runner.audit.pages BANNER_KEYS_JSON    (the renderer: reads jobs on stdin, one JSON line each)
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

FINISH_TIMEOUT = 120  # seconds the renderer may still take once the run is sealed; then the caller renders


def placeholder(key: str) -> str:
    """What a banner value reads until it is known: letters and dashes, which HTML escaping leaves alone."""
    return "signoff-pending-" + "".join(c if c.isalnum() else "-" for c in key)


class Pages:
    """The ``signoff`` side: hands the renderer notebooks (thread-safe), then fills in the banner."""

    def __init__(self, banner_keys: list[str]):
        self.keys = banner_keys
        self.process = subprocess.Popen([sys.executable, "-m", "runner.audit.pages", json.dumps(banner_keys)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)
        self._lock = threading.Lock()
        self.targets: list[Path] = []

    def add(self, notebook: Path, target: Path, code: bool = True) -> None:
        """Render ``notebook`` (final: scrubbed, its run folder named as it will be) to ``target``."""
        with self._lock:
            self.targets.append(target)
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(json.dumps([str(notebook), str(target), code]) + "\n")
                self.process.stdin.flush()
            except (OSError, ValueError):  # the renderer is gone: wait() reports this page as not delivered
                pass

    def wait(self) -> set[Path]:
        """The pages the renderer delivered, once it has rendered all it was given (then nothing writes in the
        run folder any more: it can be scrubbed and sealed)."""
        try:
            with self._lock:
                out, _ = self.process.communicate(timeout=FINISH_TIMEOUT)
        except (subprocess.TimeoutExpired, OSError, ValueError):
            self.close()
            return set()
        return {Path(line[len("done "):]) for line in out.splitlines() if line.startswith("done ")}

    def fill(self, pages: set[Path], banner: dict[str, str]) -> set[Path]:
        """Write ``banner``'s values into delivered ``pages``; those filled (none if the banner has other keys)."""
        if list(banner) != self.keys:
            return set()
        for page in pages:
            text = page.read_text(encoding="utf-8")
            for key, value in banner.items():
                text = text.replace(placeholder(key), html.escape(str(value)), 1)
            page.write_text(text, encoding="utf-8")
        return pages

    def close(self) -> None:
        """Stop the renderer (a run that ends otherwise renders its pages the usual way, if at all) and remove
        what it left half written."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for target in self.targets:
            _partial(target).unlink(missing_ok=True)


def _partial(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial")


def serve(banner_keys: list[str]) -> None:
    """Render each job read on stdin; say ``done TARGET`` for each page written."""
    from runner import startup

    startup.skip_unused_imports()
    from runner.audit import render

    render.warm()
    banner = {key: placeholder(key) for key in banner_keys}
    for line in sys.stdin:
        notebook, target, code = json.loads(line)
        target = Path(target)
        partial = _partial(target)
        try:
            render.render(Path(notebook), partial, banner, code=code)
        except Exception as exc:  # noqa: BLE001 - the caller renders this page itself, and meets the error there
            partial.unlink(missing_ok=True)
            print(f"failed {target}: {type(exc).__name__}: {exc}", flush=True)
            continue
        os.replace(partial, target)  # a page appears whole, or not at all
        print(f"done {target}", flush=True)


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))
