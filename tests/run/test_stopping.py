"""A stop signal reaches the run whichever thread the OS hands it to."""

import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from runner.run import stopping


def test_a_signal_delivered_to_a_stage_thread_still_stops_the_main_thread_waiting_for_it():
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        stage = pool.submit(release.wait, 60)  # a stage still running
        (thread,) = pool._threads
        threading.Timer(0.5, signal.pthread_kill, (thread.ident, signal.SIGTERM)).start()
        guard = threading.Timer(20, release.set)  # without the fix the wait ends only here
        guard.start()
        try:
            with stopping.handled(), pytest.raises(stopping.Stopped, match="SIGTERM"):
                stopping.waited(stage)
            assert not stage.done()  # stopped while the stage still ran, not after it ended
        finally:
            release.set()
            guard.cancel()
